//! App SQL is the SQLite dialect D1 speaks; this turns it into PostgreSQL, or refuses it with a
//! message that says what is not supported and what to write instead.
//!
//! What translates:
//! - parameters: `?` and `?NNN` become `$N`; named parameters are refused, as on D1;
//! - types: `INTEGER` → `BIGINT`, `INTEGER PRIMARY KEY [AUTOINCREMENT]` → an identity column,
//!   `REAL`/`FLOAT`/`DOUBLE` → `DOUBLE PRECISION`, `BLOB` → `BYTEA`, `BOOLEAN` → `BIGINT`
//!   (D1 binds booleans as 1 and 0), `DATETIME`/`DATE`/`TIMESTAMP` and untyped columns → `TEXT`
//!   (SQLite keeps dates as text);
//! - `TRUE`/`FALSE` → 1/0; `LIKE` → `ILIKE` (SQLite's LIKE ignores ASCII case);
//! - `INSERT OR IGNORE` → `ON CONFLICT DO NOTHING`; `LIMIT offset, count`;
//! - functions: `ifnull` → `coalesce`, `instr` → `strpos`, `group_concat` → `string_agg`,
//!   `max`/`min` of several values → `greatest`/`least`, `iif` → `CASE`, `datetime('now')`,
//!   `date('now')`, `time('now')`, `unixepoch()`, `CURRENT_TIMESTAMP` (SQLite's text forms),
//!   and the common scalar and aggregate functions both have;
//! - identifiers keep their case (`createdAt` stays `createdAt`), and an unnamed result column
//!   is named by its expression's text, as SQLite names it (`count(*)`).
//!
//! What is refused: statements other than queries, `INSERT`/`UPDATE`/`DELETE`, and
//! `CREATE`/`ALTER`/`DROP` of tables, indexes and views; transactions (`batch()` is the
//! transaction); names qualified by a schema or database; the catalogs (`sqlite_master`,
//! `pg_*`, `information_schema`); table functions; functions outside the list; `INSERT OR
//! REPLACE` (write `ON CONFLICT (…) DO UPDATE`); casts to other types.

use std::ops::ControlFlow;

use sqlparser::ast::{
    CastKind, ColumnOption, ColumnOptionDef, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    GeneratedAs, Ident, LimitClause, ObjectName, ObjectNamePart, ObjectType, Offset, OffsetRows, OnConflict,
    OnConflictAction, OnInsert, SelectItem, SetExpr, SqliteOnConflict, Statement, TableFactor, TableObject, Value,
    VisitMut, VisitorMut,
};
use sqlparser::dialect::{PostgreSqlDialect, SQLiteDialect};
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// One statement in PostgreSQL's dialect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translated {
    pub sql: String,
    /// The highest parameter it names (`$N`).
    pub parameters: usize,
    /// It changes data or the schema.
    pub writes: bool,
    /// It is an `INSERT`: its meta carries the last id generated.
    pub inserts: bool,
    /// The table a plain `INSERT` (not one inside `WITH`) writes to, as PostgreSQL names it:
    /// its identity column is asked back with `RETURNING`, for `last_row_id`.
    pub insert_table: Option<String>,
    /// The `INSERT` has a `RETURNING` list of its own (the identity column goes after it).
    pub returning: bool,
    /// It creates, changes or drops a table, index or view.
    pub changes_schema: bool,
}

/// Why app SQL was refused: D1's words, the message the app reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn refused(what: impl std::fmt::Display) -> Refused {
    Refused(format!("D1_ERROR: {what}: SQLITE_ERROR"))
}

fn not_authorized(what: impl std::fmt::Display) -> Refused {
    Refused(format!("D1_ERROR: {what}: SQLITE_AUTH"))
}

/// The statements of `sql` in PostgreSQL's dialect.
pub fn translate(sql: &str) -> Result<Vec<Translated>, Refused> {
    let statements = Parser::parse_sql(&SQLiteDialect {}, sql).map_err(|error| {
        let first = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default();
        for word in ["PRAGMA", "ATTACH", "DETACH", "VACUUM", "REINDEX", "ANALYZE"] {
            if first.eq_ignore_ascii_case(word) {
                return not_authorized(format_args!("{word} is not allowed"));
            }
        }
        // SQLite's words: `near "SELEKT": syntax error`.
        let message = error.to_string();
        let near = message.split("found: ").nth(1).and_then(|rest| rest.split(" at Line").next());
        match near {
            Some(near) => refused(format_args!("near \"{near}\": syntax error")),
            None => refused(format_args!(
                "{}: syntax error",
                message.strip_prefix("sql parser error: ").unwrap_or(&message)
            )),
        }
    })?;
    statements.into_iter().map(translate_statement).collect()
}

fn translate_statement(mut statement: Statement) -> Result<Translated, Refused> {
    let (writes, inserts) = check_statement(&mut statement)?;
    let (insert_table, returning) = match &statement {
        Statement::Insert(insert) => match &insert.table {
            TableObject::TableName(name) => match name.0.as_slice() {
                [ObjectNamePart::Identifier(ident)] => (Some(ident.value.clone()), insert.returning.is_some()),
                _ => (None, false),
            },
            _ => (None, false),
        },
        _ => (None, false),
    };
    let top_query = matches!(statement, Statement::Query(_));
    let changes_schema = matches!(
        statement,
        Statement::CreateTable(_)
            | Statement::CreateIndex(_)
            | Statement::CreateView(_)
            | Statement::Drop { .. }
            | Statement::AlterTable(_)
    );
    let mut rewrite = Rewrite { dml_body_allowed: top_query, ..Rewrite::default() };
    if let ControlFlow::Break(refusal) = statement.visit(&mut rewrite) {
        return Err(refusal);
    }
    if rewrite.named && rewrite.numbered {
        return Err(refused("a statement takes either ? or ?NNN parameters, not both"));
    }
    Ok(Translated {
        sql: keep_case(&statement.to_string())?,
        parameters: rewrite.max_param,
        writes,
        inserts,
        insert_table,
        returning,
        changes_schema,
    })
}

/// Refuses what apps may not run and rewrites the statement-level constructs; answers whether
/// it writes and whether it inserts.
fn check_statement(statement: &mut Statement) -> Result<(bool, bool), Refused> {
    match statement {
        // SQLite's `WITH … INSERT | UPDATE | DELETE`: the statement inside is checked as one.
        Statement::Query(query) => match query.body.as_mut() {
            SetExpr::Insert(inner) | SetExpr::Update(inner) | SetExpr::Delete(inner) => check_statement(inner),
            _ => Ok((false, false)),
        },
        Statement::Insert(insert) => {
            if !matches!(insert.table, TableObject::TableName(_)) {
                return Err(refused("INSERT INTO takes a table's name"));
            }
            if insert.replace_into || insert.or == Some(SqliteOnConflict::Replace) {
                return Err(refused(
                    "INSERT OR REPLACE is not supported on PostgreSQL; write INSERT ... ON CONFLICT (column) DO UPDATE \
                     SET ..., which SQLite understands too",
                ));
            }
            if insert.or == Some(SqliteOnConflict::Ignore) {
                if insert.on.is_some() {
                    return Err(refused("INSERT OR IGNORE with ON CONFLICT: keep one of them"));
                }
                insert.on = Some(OnInsert::OnConflict(OnConflict {
                    conflict_target: None,
                    action: OnConflictAction::DoNothing,
                }));
            } else if insert.or.is_some() {
                return Err(refused(
                    "INSERT OR ROLLBACK, ABORT and FAIL are not supported on PostgreSQL; write INSERT",
                ));
            }
            insert.or = None;
            Ok((true, true))
        }
        Statement::Update(update) => {
            if update.or.is_some() {
                return Err(refused("UPDATE OR ... is not supported on PostgreSQL; write UPDATE"));
            }
            if update.limit.is_some() || !update.order_by.is_empty() {
                return Err(refused("UPDATE with ORDER BY or LIMIT is not supported; narrow it with WHERE"));
            }
            Ok((true, false))
        }
        Statement::Delete(delete) => {
            if delete.limit.is_some() || !delete.order_by.is_empty() {
                return Err(refused("DELETE with ORDER BY or LIMIT is not supported; narrow it with WHERE"));
            }
            Ok((true, false))
        }
        Statement::CreateTable(table) => {
            if table.temporary {
                return Err(not_authorized("TEMP tables are not supported; create a table"));
            }
            for column in &mut table.columns {
                let primary = column.options.iter().any(|option| matches!(option.option, ColumnOption::PrimaryKey(_)));
                // SQLite's AUTOINCREMENT (and any other dialect-only word) goes.
                column.options.retain(|option| !matches!(option.option, ColumnOption::DialectSpecific(_)));
                if primary && is_integer(&column.data_type) {
                    // INTEGER PRIMARY KEY is SQLite's rowid: a number given when none is.
                    column.data_type = DataType::BigInt(None);
                    column.options.insert(
                        0,
                        ColumnOptionDef {
                            name: None,
                            option: ColumnOption::Generated {
                                generated_as: GeneratedAs::ByDefault,
                                sequence_options: None,
                                generation_expr: None,
                                generation_expr_mode: None,
                                generated_keyword: true,
                            },
                        },
                    );
                } else {
                    column.data_type = column_type(&column.data_type)?;
                }
                for option in &mut column.options {
                    if let ColumnOption::Default(expr) = &mut option.option
                        && let Expr::Value(value) = expr
                        && let Value::Boolean(flag) = value.value
                    {
                        *expr = Expr::value(Value::Number(if flag { "1" } else { "0" }.to_owned(), false));
                    }
                }
            }
            Ok((true, false))
        }
        Statement::CreateIndex(index) => {
            if index.concurrently {
                return Err(refused("CREATE INDEX CONCURRENTLY is not supported; leave out CONCURRENTLY"));
            }
            Ok((true, false))
        }
        Statement::CreateView(view) => {
            if view.materialized || view.temporary {
                return Err(refused("only plain views are supported; leave out TEMP and MATERIALIZED"));
            }
            Ok((true, false))
        }
        Statement::Drop { object_type, .. } => match object_type {
            ObjectType::Table | ObjectType::Index | ObjectType::View => Ok((true, false)),
            other => Err(not_authorized(format_args!("DROP {other} is not supported; drop tables, indexes or views"))),
        },
        Statement::AlterTable(_) => Ok((true, false)),
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => Err(not_authorized(capability_sql::authorizer::TRANSACTION_REFUSED)),
        Statement::Pragma { .. } => Err(not_authorized("PRAGMA is not supported on PostgreSQL")),
        Statement::AttachDatabase { .. } => Err(not_authorized("ATTACH is not allowed")),
        other => {
            let text = other.to_string();
            let verb: Vec<&str> = text.split_whitespace().take(2).collect();
            Err(not_authorized(format_args!(
                "{} is not supported; apps run queries, INSERT, UPDATE, DELETE and CREATE/ALTER/DROP of tables, indexes \
                 and views",
                verb.join(" ")
            )))
        }
    }
}

fn is_integer(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Integer(_) | DataType::Int(_) | DataType::BigInt(_) | DataType::Int8(_) | DataType::Int4(_)
    )
}

/// The PostgreSQL type of a column SQLite would give `data_type`'s affinity.
fn column_type(data_type: &DataType) -> Result<DataType, Refused> {
    Ok(match data_type {
        DataType::Integer(_)
        | DataType::Int(_)
        | DataType::BigInt(_)
        | DataType::Int8(_)
        | DataType::Int4(_)
        | DataType::Int2(_)
        | DataType::SmallInt(_)
        | DataType::TinyInt(_)
        | DataType::MediumInt(_)
        | DataType::Bool
        | DataType::Boolean => DataType::BigInt(None),
        DataType::Real
        | DataType::Float(_)
        | DataType::Float4
        | DataType::Float8
        | DataType::Double(_)
        | DataType::DoublePrecision => DataType::DoublePrecision,
        DataType::Numeric(_) | DataType::Decimal(_) | DataType::Dec(_) => data_type.clone(),
        DataType::Blob(_) | DataType::Bytea | DataType::Binary(_) | DataType::Varbinary(_) => DataType::Bytea,
        DataType::Text
        | DataType::Varchar(_)
        | DataType::Char(_)
        | DataType::Character(_)
        | DataType::CharacterVarying(_)
        | DataType::CharVarying(_)
        | DataType::Nvarchar(_)
        | DataType::Clob(_)
        | DataType::String(_)
        | DataType::Date
        | DataType::Datetime(_)
        | DataType::Timestamp(_, _)
        | DataType::Time(_, _)
        | DataType::JSON
        | DataType::Uuid
        | DataType::Unspecified => DataType::Text,
        DataType::Custom(name, _) => {
            // SQLite takes any word as a type and gives it an affinity by its letters.
            let word = name.to_string().to_ascii_uppercase();
            if word.contains("INT") {
                DataType::BigInt(None)
            } else if word.contains("CHAR") || word.contains("CLOB") || word.contains("TEXT") {
                DataType::Text
            } else if word.contains("BLOB") {
                DataType::Bytea
            } else if word.contains("REAL") || word.contains("FLOA") || word.contains("DOUB") {
                DataType::DoublePrecision
            } else {
                DataType::Numeric(sqlparser::ast::ExactNumberInfo::None)
            }
        }
        other => return Err(refused(format_args!("the column type {other} is not supported on PostgreSQL"))),
    })
}

/// The type a `CAST` may name.
fn cast_type(data_type: &DataType) -> Result<DataType, Refused> {
    match data_type {
        DataType::Text | DataType::Varchar(_) => Ok(DataType::Text),
        DataType::Integer(_) | DataType::Int(_) | DataType::BigInt(_) => Ok(DataType::BigInt(None)),
        DataType::Real | DataType::Float(_) | DataType::Double(_) | DataType::DoublePrecision => {
            Ok(DataType::DoublePrecision)
        }
        DataType::Blob(_) => Ok(DataType::Bytea),
        DataType::Numeric(_) | DataType::Decimal(_) => Ok(data_type.clone()),
        other => {
            Err(refused(format_args!("CAST to {other} is not supported; cast to INTEGER, REAL, TEXT, BLOB or NUMERIC")))
        }
    }
}

#[derive(Default)]
struct Rewrite {
    next_param: usize,
    max_param: usize,
    named: bool,
    numbered: bool,
    /// The next query visited may be `WITH … INSERT | UPDATE | DELETE`: it is the statement
    /// itself, not a query inside one (where a write would pass for a read).
    dml_body_allowed: bool,
}

/// Functions both dialects have under one name, with the same meaning.
const SAME: &[&str] = &[
    "abs", "avg", "coalesce", "count", "length", "lower", "ltrim", "nullif", "replace", "round", "rtrim", "sum",
    "trim", "upper", "substr", "random",
];

impl VisitorMut for Rewrite {
    type Break = Refused;

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<Refused> {
        let parts: Vec<String> = relation
            .0
            .iter()
            .map(|part| match part {
                ObjectNamePart::Identifier(ident) => ident.value.to_ascii_lowercase(),
                ObjectNamePart::Function(function) => function.name.value.to_ascii_lowercase(),
            })
            .collect();
        if parts.len() != 1 || relation.0.iter().any(|part| matches!(part, ObjectNamePart::Function(_))) {
            return ControlFlow::Break(not_authorized(format_args!(
                "{relation} names another schema or database; an app's tables are named by their own name"
            )));
        }
        if is_catalog(&parts[0]) {
            return ControlFlow::Break(not_authorized(format_args!(
                "{relation} is not readable: the catalog is the platform's; `terrarium data usage` lists an app's tables"
            )));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<Refused> {
        match factor {
            TableFactor::Table { args: None, .. } | TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => {
                ControlFlow::Continue(())
            }
            other => ControlFlow::Break(refused(format_args!(
                "{other} is not supported in FROM; name tables, views or subqueries"
            ))),
        }
    }

    fn pre_visit_query(&mut self, query: &mut sqlparser::ast::Query) -> ControlFlow<Refused> {
        let dml_body_allowed = std::mem::take(&mut self.dml_body_allowed);
        if let Err(refusal) = check_query(query, dml_body_allowed) {
            return ControlFlow::Break(refusal);
        }
        if let Some(LimitClause::OffsetCommaLimit { offset, limit }) = &query.limit_clause {
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(limit.clone()),
                offset: Some(Offset { value: offset.clone(), rows: OffsetRows::None }),
                limit_by: Vec::new(),
            });
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut sqlparser::ast::Select) -> ControlFlow<Refused> {
        if select.into.is_some() {
            return ControlFlow::Break(refused(
                "SELECT INTO is not supported; write CREATE TABLE and INSERT ... SELECT",
            ));
        }
        // SQLite names a result column by its expression as written; PostgreSQL by the
        // function's name (`count`) or `?column?`.
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(expr) = item
                && !matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
            {
                let alias = Ident::with_quote('"', expr.to_string());
                *item = SelectItem::ExprWithAlias { expr: expr.clone(), alias };
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<Refused> {
        match self.rewrite_expr(expr) {
            Ok(()) => ControlFlow::Continue(()),
            Err(refusal) => ControlFlow::Break(refusal),
        }
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<Refused> {
        // Functions are rewritten after their arguments, which may hold parameters.
        if let Expr::Function(function) = expr {
            match rewrite_function(function) {
                Ok(Some(replacement)) => *expr = replacement,
                Ok(None) => {}
                Err(refusal) => return ControlFlow::Break(refusal),
            }
        }
        ControlFlow::Continue(())
    }
}

/// Refuses the query forms SQLite does not have and that would read or write past the
/// checks: `TABLE name`, writes inside a query (a data-modifying `WITH`), row locks and
/// PostgreSQL's other clauses.
fn check_query(query: &sqlparser::ast::Query, dml_body_allowed: bool) -> Result<(), Refused> {
    if !query.locks.is_empty() || query.for_clause.is_some() {
        return Err(refused("FOR UPDATE and FOR SHARE are not supported; batch() is the transaction"));
    }
    if query.fetch.is_some() || query.settings.is_some() || query.format_clause.is_some() {
        return Err(refused("FETCH, SETTINGS and FORMAT are not supported; write LIMIT"));
    }
    if !query.pipe_operators.is_empty() {
        return Err(refused("pipe syntax is not supported"));
    }
    check_body(&query.body, dml_body_allowed)
}

fn check_body(body: &SetExpr, dml_body_allowed: bool) -> Result<(), Refused> {
    match body {
        SetExpr::Select(_) | SetExpr::Query(_) | SetExpr::Values(_) => Ok(()),
        SetExpr::SetOperation { left, right, .. } => {
            check_body(left, false)?;
            check_body(right, false)
        }
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) if dml_body_allowed => Ok(()),
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) => {
            Err(refused("INSERT, UPDATE and DELETE inside a query are not supported; run them as statements"))
        }
        SetExpr::Table(_) => Err(refused("TABLE name is not supported; write SELECT * FROM name")),
        SetExpr::Merge(_) => Err(refused("MERGE is not supported; write INSERT ... ON CONFLICT")),
    }
}

impl Rewrite {
    fn rewrite_expr(&mut self, expr: &mut Expr) -> Result<(), Refused> {
        match expr {
            Expr::Value(value) => match &mut value.value {
                Value::Placeholder(text) => {
                    let number = match text.as_str() {
                        "?" => {
                            self.named = true;
                            self.next_param += 1;
                            self.next_param
                        }
                        numbered if numbered.starts_with('?') => {
                            self.numbered = true;
                            numbered[1..].parse::<usize>().ok().filter(|n| (1..=32766).contains(n)).ok_or_else(
                                || refused(format_args!("{numbered} is not a parameter; number them ?1, ?2, ...")),
                            )?
                        }
                        other => {
                            return Err(refused(format_args!(
                                "named parameters ({other}) are not supported; D1 binds ? and ?NNN in order"
                            )));
                        }
                    };
                    self.max_param = self.max_param.max(number);
                    *text = format!("${number}");
                    Ok(())
                }
                Value::Boolean(flag) => {
                    value.value = Value::Number(if *flag { "1" } else { "0" }.to_owned(), false);
                    Ok(())
                }
                _ => Ok(()),
            },
            Expr::Like { negated, any, expr: subject, pattern, escape_char } => {
                *expr = Expr::ILike {
                    negated: *negated,
                    any: *any,
                    expr: subject.clone(),
                    pattern: pattern.clone(),
                    escape_char: escape_char.clone(),
                };
                Ok(())
            }
            Expr::Cast { kind, data_type, .. } => {
                *kind = CastKind::Cast;
                *data_type = cast_type(data_type)?;
                Ok(())
            }
            Expr::CompoundIdentifier(parts) if parts.len() > 2 => Err(not_authorized(format_args!(
                "{expr} names another schema or database; name a table's column as table.column"
            ))),
            Expr::Collate { .. } => Err(refused("COLLATE is not supported on PostgreSQL")),
            Expr::Subquery(_)
            | Expr::Exists { .. }
            | Expr::In { .. }
            | Expr::Substring { .. }
            | Expr::Trim { .. }
            | Expr::Identifier(_)
            | Expr::CompoundIdentifier(_)
            | Expr::BinaryOp { .. }
            | Expr::UnaryOp { .. }
            | Expr::Nested(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::IsTrue(_)
            | Expr::IsFalse(_)
            | Expr::IsNotTrue(_)
            | Expr::IsNotFalse(_)
            | Expr::IsDistinctFrom(..)
            | Expr::IsNotDistinctFrom(..)
            | Expr::Between { .. }
            | Expr::ILike { .. }
            | Expr::Case { .. }
            | Expr::Function(_)
            | Expr::Tuple(_) => Ok(()),
            other => Err(refused(format_args!("{other} is not supported on PostgreSQL"))),
        }
    }
}

/// The function in PostgreSQL: renamed in place, or a replacement expression.
fn rewrite_function(function: &mut sqlparser::ast::Function) -> Result<Option<Expr>, Refused> {
    let name = match function.name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => ident.value.to_ascii_lowercase(),
        _ => return Err(not_authorized(format_args!("{} names another schema", function.name))),
    };
    if function.filter.is_some() || function.over.is_some() || !function.within_group.is_empty() {
        return Err(refused(format_args!("{name}() with FILTER, OVER or WITHIN GROUP is not supported")));
    }
    let args: Vec<String> = match &function.args {
        FunctionArguments::None => Vec::new(),
        FunctionArguments::List(list) if list.clauses.is_empty() => list
            .args
            .iter()
            .map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Ok(expr.to_string()),
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => Ok("*".to_owned()),
                _ => Err(refused(format_args!("{name}() takes plain arguments"))),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(refused(format_args!("{name}() takes plain arguments"))),
    };
    let distinct = matches!(&function.args, FunctionArguments::List(list) if list.duplicate_treatment.is_some());
    let now_text = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')";
    let replacement = match (name.as_str(), args.as_slice()) {
        (name, _) if SAME.contains(&name) => {
            set_name(function, name);
            return Ok(None);
        }
        ("max" | "min", [_]) => {
            set_name(function, &name);
            return Ok(None);
        }
        ("max", [_, _, ..]) => format!("greatest({})", args.join(", ")),
        ("min", [_, _, ..]) => format!("least({})", args.join(", ")),
        ("ifnull", [a, b]) => format!("coalesce({a}, {b})"),
        ("hex", [x]) => format!("upper(encode({x}, 'hex'))"),
        ("last_insert_rowid", []) => "lastval()".to_owned(),
        ("instr", [haystack, needle]) => format!("strpos({haystack}, {needle})"),
        ("total", [x]) => format!("coalesce(sum({x}), 0)::double precision"),
        ("group_concat", [x]) if !distinct => format!("string_agg(({x})::text, ',')"),
        ("group_concat", [x, separator]) if !distinct => format!("string_agg(({x})::text, {separator})"),
        ("iif", [condition, then, otherwise]) => format!("CASE WHEN {condition} THEN {then} ELSE {otherwise} END"),
        ("datetime", [now]) if is_now(now) => now_text.to_owned(),
        ("date", [now]) if is_now(now) => "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')".to_owned(),
        ("time", [now]) if is_now(now) => "to_char(now() AT TIME ZONE 'UTC', 'HH24:MI:SS')".to_owned(),
        ("unixepoch", []) => "extract(epoch FROM now())::bigint".to_owned(),
        ("unixepoch", [now]) if is_now(now) => "extract(epoch FROM now())::bigint".to_owned(),
        ("current_timestamp", []) if matches!(function.args, FunctionArguments::None) => now_text.to_owned(),
        ("current_date", []) if matches!(function.args, FunctionArguments::None) => {
            "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')".to_owned()
        }
        ("datetime" | "date" | "time" | "unixepoch" | "strftime" | "julianday", _) => {
            return Err(refused(format_args!(
                "{name}() is supported with 'now' only on PostgreSQL; compute dates in JavaScript and bind them as text"
            )));
        }
        _ => {
            return Err(refused(format_args!(
                "no such function: {name} (on PostgreSQL apps call abs, avg, coalesce, count, group_concat, ifnull, \
                 hex, iif, instr, last_insert_rowid, length, lower, ltrim, max, min, nullif, random, replace, round, \
                 rtrim, substr, sum, total, trim, upper, datetime('now'), date('now'), time('now'), unixepoch())"
            )));
        }
    };
    let replacement = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&replacement)
        .and_then(|mut parser| parser.parse_expr())
        .map_err(|error| refused(format_args!("{name}(): {error}")))?;
    Ok(Some(Expr::Nested(Box::new(replacement))))
}

fn set_name(function: &mut sqlparser::ast::Function, name: &str) {
    function.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]);
}

fn is_now(arg: &str) -> bool {
    arg.eq_ignore_ascii_case("'now'")
}

/// A name of PostgreSQL's or SQLite's catalogs, or of the platform's own tables.
fn is_catalog(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("pg_") || name.starts_with("sqlite_") || name == "information_schema" || name == "_cf_kv"
}

/// Quotes each unquoted identifier that has upper-case letters, so PostgreSQL keeps its case
/// as SQLite does (a column `createdAt` is read back as `createdAt`, not `createdat`); turns
/// SQLite's other identifier quotes (`` ` ``, `[ ]`) into double quotes.
fn keep_case(sql: &str) -> Result<String, Refused> {
    // Strings keep their escapes (`''`): printed back as read, never unescaped into SQL.
    let tokens = Tokenizer::new(&SQLiteDialect {}, sql)
        .with_unescape(false)
        .tokenize()
        .map_err(|error| refused(format_args!("{error}: syntax error")))?;
    let mut out = String::with_capacity(sql.len() + 16);
    for token in tokens {
        // The second wall, on the final text: no name of the catalogs, quoted or not, wherever
        // it stands (a `TABLE`, a `DROP`, a `REFERENCES`, a type).
        if let Token::Word(word) = &token
            && is_catalog(&word.value)
        {
            return Err(not_authorized(format_args!(
                "{} is not readable: the catalog is the platform's; `terrarium data usage` lists an app's tables",
                word.value
            )));
        }
        match token {
            Token::Word(word)
                if (word.quote_style.is_none()
                    && word.keyword == Keyword::NoKeyword
                    && word.value.chars().any(|c| c.is_ascii_uppercase()))
                    || matches!(word.quote_style, Some('`' | '[')) =>
            {
                out.push_str(&Ident::with_quote('"', word.value).to_string());
            }
            other => out.push_str(&other.to_string()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> String {
        let mut translated = translate(sql).unwrap();
        assert_eq!(translated.len(), 1, "{sql}");
        translated.remove(0).sql
    }

    fn refusal(sql: &str) -> String {
        translate(sql).unwrap_err().0
    }

    #[test]
    fn tables_take_postgres_types_and_an_integer_primary_key_becomes_an_identity() {
        assert_eq!(
            one("CREATE TABLE IF NOT EXISTS expenses (id INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT NOT NULL, \
                 cents INTEGER, rate REAL, photo BLOB, done BOOLEAN DEFAULT false, at DATETIME DEFAULT CURRENT_TIMESTAMP)"),
            "CREATE TABLE IF NOT EXISTS expenses (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, who TEXT NOT NULL, \
             cents BIGINT, rate DOUBLE PRECISION, photo BYTEA, done BIGINT DEFAULT 0, at TEXT DEFAULT \
             (to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')))"
        );
    }

    #[test]
    fn parameters_are_numbered_and_named_ones_refused() {
        let translated = translate("SELECT * FROM t WHERE a = ? AND b = ?").unwrap();
        assert_eq!(translated[0].sql, "SELECT * FROM t WHERE a = $1 AND b = $2");
        assert_eq!(translated[0].parameters, 2);
        let translated = translate("SELECT * FROM t WHERE a = ?2 OR b = ?1").unwrap();
        assert_eq!(translated[0].sql, "SELECT * FROM t WHERE a = $2 OR b = $1");
        assert!(refusal("SELECT * FROM t WHERE a = :a").contains("named parameters"));
        assert!(refusal("SELECT ?1, ?").contains("not both"));
    }

    #[test]
    fn sqlite_constructs_translate() {
        assert_eq!(
            one("INSERT OR IGNORE INTO votes (who) VALUES (?)"),
            "INSERT INTO votes (who) VALUES ($1) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            one("SELECT * FROM t WHERE name LIKE ? LIMIT 5, 10"),
            "SELECT * FROM t WHERE name ILIKE $1 LIMIT 10 OFFSET 5"
        );
        assert_eq!(
            one("SELECT ifnull(a, 0) AS a FROM t WHERE done = true"),
            "SELECT (coalesce(a, 0)) AS a FROM t WHERE done = 1"
        );
        assert_eq!(one("SELECT COUNT(*) FROM t"), "SELECT count(*) AS \"COUNT(*)\" FROM t");
        assert_eq!(
            one("SELECT createdAt, [weird name] FROM Todos"),
            "SELECT \"createdAt\", \"weird name\" FROM \"Todos\""
        );
        assert_eq!(
            one("SELECT group_concat(x, '; ') AS xs FROM t"),
            "SELECT (string_agg((x)::TEXT, '; ')) AS xs FROM t"
        );
        assert_eq!(one("SELECT max(a, b) AS m FROM t"), "SELECT (greatest(a, b)) AS m FROM t");
        assert_eq!(one("SELECT CAST(x AS INTEGER) AS n FROM t"), "SELECT CAST(x AS BIGINT) AS n FROM t");
    }

    #[test]
    fn escapes_are_refused_with_what_to_do() {
        for (sql, says) in [
            ("ATTACH DATABASE 'x' AS y", "ATTACH"),
            ("PRAGMA table_info(t)", "PRAGMA"),
            ("SELECT * FROM sqlite_master", "catalog"),
            ("SELECT * FROM pg_catalog.pg_class", "another schema"),
            ("SELECT * FROM pg_class", "catalog"),
            ("SELECT * FROM information_schema.tables", "another schema"),
            ("SELECT * FROM other_schema.expenses", "another schema"),
            ("SELECT pg_read_file('/etc/passwd')", "no such function"),
            ("SELECT current_setting('search_path')", "no such function"),
            ("SET search_path TO other", "not supported"),
            ("SET ROLE postgres", "not supported"),
            ("RESET ROLE", "not supported"),
            ("BEGIN", "batch()"),
            ("INSERT OR REPLACE INTO t VALUES (1)", "ON CONFLICT"),
            ("SELECT CAST('pg_class' AS regclass)", "CAST"),
            ("SELECT * FROM generate_series(1, 10)", "FROM"),
            ("CREATE TEMP TABLE t AS SELECT 1", "TEMP"),
            ("COPY t TO '/tmp/x'", "not supported"),
            ("GRANT ALL ON t TO PUBLIC", "not supported"),
            ("CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql", "FUNCTION"),
            ("SELECT datetime(created, '+1 day') FROM t", "'now' only"),
            ("SELEKT 1", "near \"SELEKT\": syntax error"),
            ("TABLE pg_catalog.pg_authid", "syntax error"),
            ("SELECT * FROM (TABLE pg_authid)", "TABLE name"),
            ("SELECT 1 UNION TABLE secrets", "SELECT * FROM"),
            ("DROP TABLE pg_catalog.pg_class", "catalog"),
            ("CREATE TABLE t (x INTEGER REFERENCES pg_authid (oid))", "catalog"),
            ("SELECT \"PG_ROLES\".rolname FROM t", "catalog"),
            ("WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone", "inside a query"),
            ("SELECT * FROM (WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x)", "inside a query"),
            ("SELECT * INTO copy FROM t", "SELECT INTO"),
            ("SELECT * FROM t FOR UPDATE", "FOR UPDATE"),
        ] {
            let refusal = refusal(sql);
            assert!(refusal.starts_with("D1_ERROR: ") && refusal.contains(says), "{sql}: {refusal}");
        }
    }

    #[test]
    fn a_write_under_with_is_a_write() {
        let translated = translate("WITH x AS (SELECT 1 AS n) INSERT INTO t (n) SELECT n FROM x").unwrap();
        assert!(translated[0].writes && translated[0].inserts);
        assert_eq!(translated[0].insert_table, None);
        let translated =
            translate("WITH old AS (SELECT id FROM t) DELETE FROM t WHERE id IN (SELECT id FROM old)").unwrap();
        assert!(translated[0].writes && !translated[0].inserts);
        assert!(refusal("WITH x AS (SELECT 1) INSERT OR REPLACE INTO t VALUES (1)").contains("ON CONFLICT"));
        let translated = translate("INSERT INTO \"Todos\" (title) VALUES (?) RETURNING id").unwrap();
        assert_eq!(translated[0].insert_table.as_deref(), Some("Todos"));
        assert!(translated[0].returning);
    }

    /// What reaches PostgreSQL is read back as the same statements: a string stays one string,
    /// whatever quotes and semicolons are in it.
    #[test]
    fn the_translation_parses_back_to_the_same_statements() {
        for sql in [
            "INSERT INTO t (s) VALUES ('it''s; DROP TABLE t; --')",
            "SELECT 'a''' || \"b\"\"c\" AS x FROM t WHERE s = 'x'';SELECT 1'",
            "UPDATE t SET s = 'O''Brien' WHERE note LIKE '%''%'",
        ] {
            let translated = one(sql);
            let parsed = Parser::parse_sql(&PostgreSqlDialect {}, &translated).unwrap();
            assert_eq!(parsed.len(), 1, "{translated}");
            let original = Parser::parse_sql(&SQLiteDialect {}, sql).unwrap();
            let strings = |statements: &Vec<Statement>| {
                let mut found = Vec::new();
                let _ = sqlparser::ast::visit_expressions(statements, |expr| {
                    if let Expr::Value(value) = expr
                        && let Value::SingleQuotedString(text) = &value.value
                    {
                        found.push(text.clone());
                    }
                    ControlFlow::<()>::Continue(())
                });
                found
            };
            assert_eq!(strings(&parsed), strings(&original), "{translated}");
        }
    }

    #[test]
    fn several_statements_each_translate() {
        let translated = translate("CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1); SELECT x FROM a").unwrap();
        assert_eq!(translated.len(), 3);
        assert!(translated[0].writes && translated[1].inserts && !translated[2].writes);
    }
}
