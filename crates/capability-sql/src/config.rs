//! `[data.sql]` in `terrarium.toml`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlSection {
    /// How long one statement may run before it is stopped (D1: 30 s).
    pub max_statement_ms: u64,
    /// Rows one statement may return.
    pub max_result_rows: u64,
    /// Bytes of values one statement may return.
    pub max_result_bytes: u64,
    /// Parameters one statement may bind (D1: 100).
    pub max_bound_parameters: u32,
    /// Bytes of SQL in one statement (D1: 100 KB).
    pub max_statement_bytes: u32,
    /// Bytes of one string, BLOB or row (D1: 2 MB).
    pub max_value_bytes: u32,
    /// How large a database may grow when the manifest sets no `sqlStorageMiB` (D1: 10 GB).
    pub default_database_mib: u32,
    /// Databases kept open at once; the least recently used close beyond it.
    pub max_open_databases: u64,
}

impl Default for SqlSection {
    fn default() -> SqlSection {
        SqlSection {
            max_statement_ms: 30_000,
            max_result_rows: 100_000,
            max_result_bytes: 64 * 1024 * 1024,
            max_bound_parameters: 100,
            max_statement_bytes: 100_000,
            max_value_bytes: 2_000_000,
            default_database_mib: 1024,
            max_open_databases: 512,
        }
    }
}

/// The limits every app's connection runs under.
#[derive(Clone, Debug)]
pub struct Limits {
    pub statement_time: Duration,
    pub result_rows: u64,
    pub result_bytes: u64,
    pub bound_parameters: u32,
    pub statement_bytes: u32,
    pub value_bytes: u32,
    pub default_database_mib: u32,
}

impl SqlSection {
    /// Every problem of the section, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let numbers = [
            ("max_statement_ms", self.max_statement_ms, "milliseconds"),
            ("max_result_rows", self.max_result_rows, "rows"),
            ("max_result_bytes", self.max_result_bytes, "bytes"),
            ("max_bound_parameters", u64::from(self.max_bound_parameters), "parameters"),
            ("max_statement_bytes", u64::from(self.max_statement_bytes), "bytes"),
            ("max_value_bytes", u64::from(self.max_value_bytes), "bytes"),
            ("default_database_mib", u64::from(self.default_database_mib), "MiB"),
            ("max_open_databases", self.max_open_databases, "databases"),
        ];
        for (key, value, unit) in numbers {
            if value == 0 {
                problems.push(format!("data.sql.{key} is 0; give a number of {unit}"));
            }
        }
        // SQLite's own ceiling on a bound parameter's number.
        if self.max_bound_parameters > 32_766 {
            problems.push(format!(
                "data.sql.max_bound_parameters is {}; SQLite binds at most 32766",
                self.max_bound_parameters
            ));
        }
        problems
    }

    /// The limits, and the folder databases live in under the data directory.
    pub fn build(&self, data_dir: &std::path::Path) -> (Limits, PathBuf) {
        let limits = Limits {
            statement_time: Duration::from_millis(self.max_statement_ms.max(1)),
            result_rows: self.max_result_rows.max(1),
            result_bytes: self.max_result_bytes.max(1),
            bound_parameters: self.max_bound_parameters.clamp(1, 32_766),
            statement_bytes: self.max_statement_bytes.max(1),
            value_bytes: self.max_value_bytes.max(1),
            default_database_mib: self.default_database_mib.max(1),
        };
        (limits, data_dir.join("sql"))
    }
}

impl Default for Limits {
    fn default() -> Limits {
        SqlSection::default().build(std::path::Path::new(".")).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_and_impossible_limits_are_named() {
        let section = SqlSection { max_statement_ms: 0, max_bound_parameters: 40_000, ..SqlSection::default() };
        let problems = section.validate();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("data.sql.max_statement_ms is 0"));
        assert!(problems[1].contains("SQLite binds at most 32766"));
        assert!(SqlSection::default().validate().is_empty());
    }
}
