//! The platform's own work on the server, as the role of the configured URL (which may create
//! roles and databases): tenants' roles, databases and schemas, created once and dropped with
//! their app. Every name is the platform's (`t_iso_…`, `t_sch_…`, `t_shr_…`: hex from a
//! digest), never an app's.

use deployment::SqlTier;
use tokio_postgres::{Client, NoTls};

use crate::Tenant;

/// An identifier in double quotes.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What went wrong, without the password (the URL's is never in a server message).
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("PostgreSQL said: {} ({})", db.message(), db.code().code()),
        None => format!("PostgreSQL could not be reached: {error}"),
    }
}

async fn connect(admin: &tokio_postgres::Config, database: Option<&str>) -> Result<Client, String> {
    let mut config = admin.clone();
    if let Some(database) = database {
        config.dbname(database);
    }
    let (client, connection) = config.connect(NoTls).await.map_err(|error| {
        format!(
            "{} (the URL in [data.postgres] url_env must name a role that may create roles and databases)",
            describe(&error)
        )
    })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn exists(client: &Client, query: &str, name: &str) -> Result<bool, String> {
    client.query_opt(query, &[&name]).await.map(|row| row.is_some()).map_err(|error| describe(&error))
}

/// Runs DDL, taking "already exists" (another replica, or a race) as done.
async fn run(client: &Client, sql: &str) -> Result<(), String> {
    match client.batch_execute(sql).await {
        Ok(()) => Ok(()),
        Err(error)
            if error
                .as_db_error()
                .is_some_and(|db| ["42710", "42P04", "42P06", "23505"].contains(&db.code().code())) =>
        {
            Ok(())
        }
        Err(error) => Err(describe(&error)),
    }
}

/// The database of the `schema` and `shared` tiers, closed to every role but those granted it.
pub(crate) async fn prepare_apps_database(admin: &tokio_postgres::Config, apps: &str) -> Result<(), String> {
    let client = connect(admin, None).await?;
    if !exists(&client, "SELECT 1 FROM pg_database WHERE datname = $1", apps).await? {
        run(&client, &format!("CREATE DATABASE {}", quote(apps))).await?;
    }
    run(&client, &format!("REVOKE ALL ON DATABASE {} FROM PUBLIC", quote(apps))).await?;
    let apps_client = connect(admin, Some(apps)).await?;
    run(&apps_client, "REVOKE ALL ON SCHEMA public FROM PUBLIC").await
}

/// Creates the tenant's role (its password set to the one derived now), and its database or
/// schema, when missing.
pub(crate) async fn create_tenant(
    admin: &tokio_postgres::Config,
    apps: &str,
    tenant: &Tenant,
    password: &str,
) -> Result<(), String> {
    let client = connect(admin, None).await?;
    let role = quote(&tenant.role);
    if !exists(&client, "SELECT 1 FROM pg_roles WHERE rolname = $1", &tenant.role).await? {
        run(
            &client,
            &format!(
                "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS \
                 CONNECTION LIMIT 8"
            ),
        )
        .await?;
    }
    // The server is sent the SCRAM verifier, never the password: a statement log or
    // `pg_stat_statements` shows nothing that logs in. (Base64 and `$:`: safe in the statement.)
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    run(&client, &format!("ALTER ROLE {role} PASSWORD '{verifier}'")).await?;
    // Says whose the role is, for operators (`\du+`): the installation, tier and owner.
    let comment = format!("terrarium: {apps} {} {}", tenant.tier.as_str(), tenant.owner).replace('\'', "''");
    run(&client, &format!("COMMENT ON ROLE {role} IS '{comment}'")).await?;
    // The platform's role joins the tenant's, so that it may own and drop the tenant's objects
    // without being a superuser (a superuser already may).
    run(&client, &format!("GRANT {role} TO CURRENT_USER")).await.ok();
    match tenant.tier {
        SqlTier::Isolated => {
            // The platform owns the database; the tenant may connect to it and owns its schema,
            // but may not create temporary tables or schemas (an owner could).
            let database = quote(&tenant.database);
            if !exists(&client, "SELECT 1 FROM pg_database WHERE datname = $1", &tenant.database).await? {
                run(&client, &format!("CREATE DATABASE {database}")).await?;
            }
            run(
                &client,
                &format!(
                    "ALTER DATABASE {database} OWNER TO CURRENT_USER; REVOKE ALL ON DATABASE {database} FROM PUBLIC, \
                     {role}; GRANT CONNECT ON DATABASE {database} TO {role}"
                ),
            )
            .await?;
            let own = connect(admin, Some(&tenant.database)).await?;
            run(&own, &format!("REVOKE ALL ON SCHEMA public FROM PUBLIC; ALTER SCHEMA public OWNER TO {role}")).await?;
            run(&client, &format!("ALTER ROLE {role} IN DATABASE {database} SET search_path TO public")).await
        }
        SqlTier::Schema | SqlTier::Shared => {
            run(&client, &format!("GRANT CONNECT ON DATABASE {} TO {role}", quote(apps))).await?;
            let apps_client = connect(admin, Some(apps)).await?;
            run(&apps_client, &format!("CREATE SCHEMA IF NOT EXISTS {role} AUTHORIZATION {role}")).await?;
            run(&client, &format!("ALTER ROLE {role} IN DATABASE {} SET search_path TO {role}", quote(apps))).await
        }
    }
}

/// Drops the tenant's database or schema and its role; says what went (its tables), or `None`
/// when it had none.
pub(crate) async fn drop_tenant(
    admin: &tokio_postgres::Config,
    apps: &str,
    tenant: &Tenant,
) -> Result<Option<String>, String> {
    let client = connect(admin, None).await?;
    if !exists(&client, "SELECT 1 FROM pg_roles WHERE rolname = $1", &tenant.role).await? {
        return Ok(None);
    }
    let role = quote(&tenant.role);
    let said = match tenant.tier {
        SqlTier::Isolated => {
            let bytes = client
                .query_opt("SELECT pg_database_size(datname) FROM pg_database WHERE datname = $1", &[&tenant.database])
                .await
                .map_err(|error| describe(&error))?
                .map(|row| row.get::<_, i64>(0));
            run(&client, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote(&tenant.database))).await?;
            bytes.map(|bytes| format!("SQL: its database ({bytes} bytes) deleted with the app"))
        }
        SqlTier::Schema | SqlTier::Shared => {
            let apps_client = connect(admin, Some(apps)).await?;
            let tables: Vec<String> = apps_client
                .query(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1",
                    &[&tenant.schema],
                )
                .await
                .map_err(|error| describe(&error))?
                .into_iter()
                .map(|row| row.get(0))
                .collect();
            // Its sessions end first: a dropped role cannot have any.
            apps_client
                .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", &[&tenant.role])
                .await
                .map_err(|error| describe(&error))?;
            run(&apps_client, &format!("DROP SCHEMA IF EXISTS {role} CASCADE; DROP OWNED BY {role}")).await?;
            run(&client, &format!("REVOKE ALL ON DATABASE {} FROM {role}", quote(apps))).await?;
            (!tables.is_empty()).then(|| format!("SQL: {} deleted with the app", tables.join(", ")))
        }
    };
    run(&client, &format!("DROP ROLE IF EXISTS {role}")).await?;
    Ok(said)
}

fn tier_named(name: &str) -> Option<SqlTier> {
    [SqlTier::Isolated, SqlTier::Schema, SqlTier::Shared].into_iter().find(|tier| tier.as_str() == name)
}

type Moves = std::collections::HashMap<deployment::AppKey, (SqlTier, SqlTier)>;

/// Where apps' own data is (`isolated`, `schema`), read from this installation's tenant roles,
/// and the moves `migrate` made (its table is created when missing).
pub(crate) async fn load_state(
    admin: &tokio_postgres::Config,
    apps: &str,
) -> Result<(std::collections::HashMap<deployment::AppKey, SqlTier>, Moves), String> {
    let client = connect(admin, None).await?;
    run(
        &client,
        "CREATE TABLE IF NOT EXISTS terrarium_sql_moves (namespace TEXT NOT NULL, app TEXT NOT NULL, \
         target TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (namespace, app))",
    )
    .await?;
    let prefix = format!("terrarium: {apps} ");
    let mut existing = std::collections::HashMap::new();
    for row in client
        .query(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles \
             WHERE starts_with(coalesce(shobj_description(oid, 'pg_authid'), ''), $1)",
            &[&prefix],
        )
        .await
        .map_err(|error| describe(&error))?
    {
        let comment: String = row.get(0);
        let mut words = comment[prefix.len()..].split(' ');
        if let (Some(tier), Some((namespace, name))) =
            (words.next().and_then(tier_named), words.next().and_then(|owner| owner.split_once('/')))
        {
            existing.insert(deployment::AppKey::new(namespace, name), tier);
        }
    }
    let mut moves = Moves::new();
    for row in client
        .query("SELECT namespace, app, target, source FROM terrarium_sql_moves", &[])
        .await
        .map_err(|error| describe(&error))?
    {
        let (namespace, name, target, source): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if let (Some(target), Some(source)) = (tier_named(&target), tier_named(&source)) {
            moves.insert(deployment::AppKey::new(namespace, name), (target, source));
        }
    }
    Ok((existing, moves))
}

/// Records that `app`'s data is in `target` now, the manifest having named `source`.
pub(crate) async fn record_move(
    admin: &tokio_postgres::Config,
    app: &deployment::AppKey,
    target: SqlTier,
    source: SqlTier,
) -> Result<(), String> {
    let client = connect(admin, None).await?;
    client
        .execute(
            "INSERT INTO terrarium_sql_moves (namespace, app, target, source) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (namespace, app) DO UPDATE SET target = excluded.target, source = excluded.source",
            &[&app.namespace, &app.name, &target.as_str(), &source.as_str()],
        )
        .await
        .map(drop)
        .map_err(|error| describe(&error))
}

/// Forgets a deleted app's move.
pub(crate) async fn forget_move(admin: &tokio_postgres::Config, app: &deployment::AppKey) -> Result<(), String> {
    let client = connect(admin, None).await?;
    client
        .execute("DELETE FROM terrarium_sql_moves WHERE namespace = $1 AND app = $2", &[&app.namespace, &app.name])
        .await
        .map(drop)
        .map_err(|error| describe(&error))
}
