//! What app SQL may do, decided by SQLite's authorizer as each statement is prepared, for
//! every statement, view and trigger body alike. An app reaches its own database (`main`) and,
//! under `isolation: schema`, only the tables it created; the ways out of that (ATTACH,
//! extensions, writable or revealing PRAGMAs, temporary objects, the catalog of a shared file,
//! transactions that would outlive a call) are refused with a reason the app is told.

use std::collections::HashSet;

use deployment::SqlTier;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// PRAGMAs an app may run: read-only ones that describe its own tables, and deferring foreign
/// keys to the end of a batch (as D1 allows).
const TABLE_PRAGMAS: [&str; 6] =
    ["table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"];

/// Functions no app may call.
const DENIED_FUNCTIONS: [&str; 2] = ["load_extension", "fts3_tokenizer"];

/// D1's refusal of a transaction statement, pointing at what to use instead.
pub const TRANSACTION_REFUSED: &str = "To execute a transaction, please use the batch() API instead of the SQL BEGIN TRANSACTION, COMMIT or SAVEPOINT statements: batch() runs its statements in one transaction and rolls them back together";

/// One connection's view of what its app may touch.
#[derive(Debug)]
pub(crate) struct Guard {
    pub tier: SqlTier,
    /// Names (lower case) of the tables, views, indexes and triggers this app owns, under
    /// `isolation: schema`; refreshed after each statement that changes the schema.
    pub owned: HashSet<String>,
    /// The platform's own statements (BEGIN, COMMIT, bookkeeping) pass.
    pub platform: bool,
    /// Why the last refusal happened, for the app's error message.
    pub refused: Option<String>,
    /// A statement of the current call created, dropped or altered something.
    pub schema_changed: bool,
    /// The statement being prepared creates, drops or alters something: SQLite reads its
    /// catalog to do so, which the app itself may not under `schema`.
    pub in_ddl: bool,
    /// Names created by the current call, the app's before the call's end records them.
    pub created: HashSet<String>,
    /// Names other apps own, read at the start of each call under the file's write lock.
    pub others: HashSet<String>,
    /// A statement of the current call altered a table (a rename makes a name to claim).
    pub altered: bool,
    /// SQLite has updated or deleted from its schema table in the statement being prepared: the
    /// catalog reads that follow are its own. Before that (a `CREATE TABLE ... AS SELECT`'s
    /// select, say), they are the app's.
    pub ddl_selects: bool,
}

impl Guard {
    pub fn new(tier: SqlTier) -> Guard {
        Guard {
            tier,
            owned: HashSet::new(),
            platform: false,
            refused: None,
            schema_changed: false,
            in_ddl: false,
            created: HashSet::new(),
            others: HashSet::new(),
            altered: false,
            ddl_selects: false,
        }
    }

    pub fn authorize(&mut self, context: &AuthContext<'_>) -> Authorization {
        if self.platform {
            return Authorization::Allow;
        }
        match self.check(context) {
            Ok(()) => Authorization::Allow,
            Err(reason) => {
                self.refused.get_or_insert(reason);
                Authorization::Deny
            }
        }
    }

    fn check(&mut self, context: &AuthContext<'_>) -> Result<(), String> {
        // An ALTER TABLE's own work on the temporary schema's catalog (which holds no app data).
        if context.database_name == Some("temp") && self.in_ddl && self.ddl_selects {
            let temp_catalog = match context.action {
                AuthAction::Read { table_name, .. } | AuthAction::Update { table_name, .. } => {
                    table_name.eq_ignore_ascii_case("sqlite_temp_master")
                        || table_name.eq_ignore_ascii_case("sqlite_temp_schema")
                }
                _ => false,
            };
            if temp_catalog {
                return Ok(());
            }
        }
        if let Some(database) = context.database_name
            && database != "main"
        {
            return Err(match database {
                "temp" => "temporary tables, views and triggers are not allowed; create a regular one".to_owned(),
                other => format!("the database {other:?} is not this app's; an app reaches only its own database"),
            });
        }
        match context.action {
            AuthAction::Attach { .. } => Err("ATTACH is not allowed: an app reaches only its own database".to_owned()),
            AuthAction::Detach { .. } => Err("DETACH is not allowed".to_owned()),
            AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Err(TRANSACTION_REFUSED.to_owned()),
            AuthAction::Pragma { pragma_name, pragma_value } => self.pragma(pragma_name, pragma_value),
            AuthAction::Function { function_name } => {
                match DENIED_FUNCTIONS.contains(&function_name.to_ascii_lowercase().as_str()) {
                    true => Err(format!("the function {function_name}() is not allowed")),
                    false => Ok(()),
                }
            }
            AuthAction::CreateTempIndex { .. }
            | AuthAction::CreateTempTable { .. }
            | AuthAction::CreateTempTrigger { .. }
            | AuthAction::CreateTempView { .. }
            | AuthAction::DropTempIndex { .. }
            | AuthAction::DropTempTable { .. }
            | AuthAction::DropTempTrigger { .. }
            | AuthAction::DropTempView { .. } => {
                Err("temporary tables, views and triggers are not allowed; create a regular one".to_owned())
            }
            AuthAction::CreateVtable { table_name, module_name } => match module_name.eq_ignore_ascii_case("fts5") {
                true => self.creating(table_name),
                false => Err(format!("virtual tables of module {module_name} are not allowed; fts5 is")),
            },
            AuthAction::CreateTable { table_name } => self.creating(table_name),
            AuthAction::CreateView { view_name } => self.creating(view_name),
            AuthAction::CreateIndex { index_name: name, table_name }
            | AuthAction::CreateTrigger { trigger_name: name, table_name } => {
                self.owns(table_name)?;
                self.creating(name)
            }
            AuthAction::DropTable { table_name } | AuthAction::DropVtable { table_name, .. } => {
                self.schema_changed = true;
                self.in_ddl = true;
                self.owns(table_name)
            }
            AuthAction::DropView { view_name } => {
                self.schema_changed = true;
                self.in_ddl = true;
                self.owns(view_name)
            }
            AuthAction::DropIndex { table_name, .. } | AuthAction::DropTrigger { table_name, .. } => {
                self.schema_changed = true;
                self.in_ddl = true;
                self.owns(table_name)
            }
            AuthAction::AlterTable { table_name, .. } => {
                self.schema_changed = true;
                self.in_ddl = true;
                self.altered = true;
                // An ALTER holds no query of the app's: what it reads of the catalog is SQLite's.
                self.ddl_selects = true;
                self.owns(table_name)
            }
            // SQLite records a CREATE, DROP or ALTER by writing its catalog, and asks first;
            // an app's own writes to the catalog SQLite refuses by itself.
            // Under `schema` the catalog is the namespace's: only SQLite's own writes during a
            // CREATE, DROP or ALTER touch it (sqlite_sequence and sqlite_stat1 included).
            // SQLite writes its schema table for a CREATE, DROP or ALTER (and refuses every other
            // write to it by itself): that write starts or continues the statement's DDL.
            // Only SQLite's own nested SQL (no trigger or view is the accessor) gets the catalog
            // allowances of a DDL statement: a trigger that a DROP TABLE's cascade fires is the app's.
            AuthAction::Insert { table_name } if is_schema_table(table_name) && context.accessor.is_none() => {
                self.in_ddl = true;
                Ok(())
            }
            AuthAction::Update { table_name, .. } | AuthAction::Delete { table_name }
                if is_schema_table(table_name) =>
            {
                self.in_ddl = true;
                self.ddl_selects = true;
                Ok(())
            }
            AuthAction::Update { table_name, .. }
            | AuthAction::Insert { table_name }
            | AuthAction::Delete { table_name }
                if is_catalog(table_name)
                    && (self.tier != SqlTier::Schema || (self.in_ddl && context.accessor.is_none())) =>
            {
                Ok(())
            }
            AuthAction::Read { table_name, .. }
                if self.in_ddl && self.ddl_selects && context.accessor.is_none() && is_catalog(table_name) =>
            {
                Ok(())
            }
            AuthAction::Read { table_name, .. }
            | AuthAction::Update { table_name, .. }
            | AuthAction::Insert { table_name }
            | AuthAction::Delete { table_name }
            | AuthAction::Analyze { table_name } => self.owns(table_name),
            AuthAction::Reindex { .. } | AuthAction::Select | AuthAction::Recursive => Ok(()),
            _ => Err("this kind of statement is not allowed".to_owned()),
        }
    }

    /// Creating `name`: never a platform name; under `schema` it becomes the app's.
    fn creating(&mut self, name: &str) -> Result<(), String> {
        self.schema_changed = true;
        self.in_ddl = true;
        reserved(name)?;
        let lower = name.to_ascii_lowercase();
        if self.others.contains(&lower) {
            return Err(format!(
                "{name} is taken by another app of this namespace; under isolation: schema the namespace's apps \
                 share one set of names, so pick another"
            ));
        }
        self.created.insert(lower);
        Ok(())
    }

    /// The app may touch `name`: under `schema` only what it created; the catalog of a shared
    /// file and the platform's bookkeeping never.
    fn owns(&self, name: &str) -> Result<(), String> {
        reserved(name)?;
        let lower = name.to_ascii_lowercase();
        if let Some(pragma) = lower.strip_prefix("pragma_") {
            return self.pragma(pragma, None);
        }
        // Table-valued functions SQLite reports as tables of `main`.
        if lower == "json_each" || lower == "json_tree" {
            return Ok(());
        }
        if lower == "sqlite_dbpage" {
            return Err("sqlite_dbpage is not allowed".to_owned());
        }
        if self.tier != SqlTier::Schema {
            return Ok(());
        }
        if lower.starts_with("sqlite_") || lower == "dbstat" {
            return Err(format!(
                "{name} is not readable under isolation: schema, where the namespace's apps share one database file; \
                 an app with isolation: isolated may read its catalog"
            ));
        }
        match !self.others.contains(&lower) && (self.owned.contains(&lower) || self.created.contains(&lower)) {
            true => Ok(()),
            false => Err(format!(
                "{name} belongs to another app of this namespace; under isolation: schema each app reaches only the tables it created"
            )),
        }
    }

    fn pragma(&self, name: &str, value: Option<&str>) -> Result<(), String> {
        let lower = name.to_ascii_lowercase();
        let allowed = match (lower.as_str(), value) {
            (pragma, Some(table)) if TABLE_PRAGMAS.contains(&pragma) => return self.owns(table),
            (pragma, None) if TABLE_PRAGMAS.contains(&pragma) => self.tier != SqlTier::Schema,
            ("table_list", None) => self.tier != SqlTier::Schema,
            ("foreign_key_check", Some(table)) => return self.owns(table),
            ("foreign_key_check", None) => self.tier != SqlTier::Schema,
            // Reading what describes the database, and D1's toggles, which change only this
            // app's own connection.
            ("foreign_keys" | "data_version" | "page_size", None) => true,
            (
                "foreign_keys"
                | "defer_foreign_keys"
                | "case_sensitive_like"
                | "ignore_check_constraints"
                | "legacy_alter_table"
                | "recursive_triggers"
                | "reverse_unordered_selects",
                Some(_),
            ) => true,
            ("quick_check" | "optimize", None) => self.tier != SqlTier::Schema,
            _ => false,
        };
        match allowed {
            true => Ok(()),
            false => Err(format!(
                "PRAGMA {name}{} is not allowed; an app may run the PRAGMAs D1 allows: table_info, table_xinfo, table_list, \
                 index_list, index_info, index_xinfo, foreign_key_list, foreign_key_check, quick_check, optimize, reading \
                 data_version and page_size, and the toggles foreign_keys, defer_foreign_keys, case_sensitive_like, \
                 ignore_check_constraints, legacy_alter_table, recursive_triggers and reverse_unordered_selects",
                value.map(|value| format!(" = {value}")).unwrap_or_default()
            )),
        }
    }
}

fn is_schema_table(name: &str) -> bool {
    name.eq_ignore_ascii_case("sqlite_master") || name.eq_ignore_ascii_case("sqlite_schema")
}

fn is_catalog(name: &str) -> bool {
    ["sqlite_master", "sqlite_schema", "sqlite_sequence", "sqlite_stat1", "sqlite_stat4"]
        .iter()
        .any(|catalog| name.eq_ignore_ascii_case(catalog))
}

/// Names the platform keeps for itself.
fn reserved(name: &str) -> Result<(), String> {
    match name.to_ascii_lowercase().starts_with("_terrarium") {
        true => Err(format!("{name} is reserved for the platform; names starting with _terrarium are not available")),
        false => Ok(()),
    }
}

/// Whether a `CREATE VIRTUAL TABLE ... USING fts5(...)` names another table as its content
/// (`content=name`; an empty `content=''` keeps no content at all).
pub(crate) fn names_external_content(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    if !(first_keyword(sql) == "CREATE" && lower.contains("virtual") && lower.contains("fts5")) {
        return false;
    }
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("content") {
        let after = rest[at + "content".len()..].trim_start();
        if let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let empty = value.starts_with("''") || value.starts_with("\"\"");
            if !empty {
                return true;
            }
        }
        rest = &rest[at + "content".len()..];
    }
    false
}

/// The first keyword of a statement, past whitespace and comments, in upper case.
pub(crate) fn first_keyword(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts5_content_options_are_read() {
        assert!(names_external_content("CREATE VIRTUAL TABLE f USING fts5(email, content='users')"));
        assert!(names_external_content("create virtual table f using FTS5(a, content = users, content_rowid=id)"));
        assert!(!names_external_content("CREATE VIRTUAL TABLE f USING fts5(a, content='')"));
        assert!(!names_external_content("CREATE VIRTUAL TABLE f USING fts5(body)"));
        assert!(!names_external_content("SELECT 'content=users'"));
    }

    #[test]
    fn the_first_keyword_skips_comments() {
        assert_eq!(first_keyword("  -- a note\n /* more */ vacuum into 'x'"), "VACUUM");
        assert_eq!(first_keyword("select 1"), "SELECT");
        assert_eq!(first_keyword("/* unterminated"), "");
    }
}
