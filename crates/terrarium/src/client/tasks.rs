//! `terrarium tasks list|run`: the server's background work (metering, budgets, the secret
//! sweep, policy audits), and running a task now instead of waiting for its period.

use api_types::{TaskInfo, TaskRun};

use super::apps::plain_table;
use super::http::ApiClient;
use crate::{ClientArgs, Output};

#[derive(clap::Subcommand, Debug)]
pub enum TasksCommand {
    /// Every background task: what it does, how often, its last run.
    List,
    /// Run a task now; prints how it went once it is over (platform admins).
    Run {
        /// The task's name, as `tasks list` shows it (`policy.audit`, `budgets.evaluate`, ...).
        name: String,
    },
}

pub fn tasks(args: &ClientArgs, command: TasksCommand) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    match command {
        TasksCommand::List => {
            let tasks: Vec<TaskInfo> = client.get_json("/tasks")?;
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&tasks)?),
                Output::Table => {
                    let rows = tasks.iter().map(|task| {
                        let last = match &task.last {
                            None => "not yet".to_owned(),
                            Some(run) => last_run(run),
                        };
                        vec![task.name.clone(), every(task.every_secs), task.runs.to_string(), last, task.about.clone()]
                    });
                    println!("{}", plain_table(&["TASK", "EVERY", "RUNS", "LAST RUN", "WHAT IT DOES"], rows));
                }
            }
        }
        TasksCommand::Run { name } => {
            // A run lasts as long as the work does (an audit of thousands of apps): no deadline.
            let response = client.send(client.post_without_deadline(&format!("/tasks/{name}/run")))?;
            let run: TaskRun = client.read_json(response)?;
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&run)?),
                Output::Table => println!("{name}: {}", last_run(&run)),
            }
            if let Some(error) = run.error {
                anyhow::bail!("task {name} failed: {error}");
            }
        }
    }
    Ok(())
}

fn last_run(run: &TaskRun) -> String {
    match &run.error {
        None => format!("ok at {} ({} ms)", run.started, run.millis),
        Some(error) => format!("FAILED at {} ({} ms): {error}", run.started, run.millis),
    }
}

fn every(secs: u64) -> String {
    match secs {
        secs if secs >= 3600 && secs % 3600 == 0 => format!("{} h", secs / 3600),
        secs if secs >= 60 && secs % 60 == 0 => format!("{} min", secs / 60),
        secs => format!("{secs} s"),
    }
}
