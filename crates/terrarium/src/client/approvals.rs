//! `terrarium approvals list|show|approve|deny`: revisions waiting for a person's approval.

use api_types::policy::{ApprovalRequest, ApprovalVoteRequest};

use super::apps::plain_table;
use super::http::ApiClient;
use crate::{ClientArgs, Output};

#[derive(clap::Subcommand, Debug)]
pub enum ApprovalsCommand {
    /// Approval requests you can see (pending ones unless --state says otherwise).
    List {
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// pending, approved, denied, superseded or all.
        #[arg(long, default_value = "pending")]
        state: String,
    },
    /// One request: what it asks for, who voted and why.
    Show { id: i64 },
    /// Approve a request; with enough approvals its revision goes live at once.
    Approve {
        id: i64,
        /// Why: kept in the request and the audit log.
        #[arg(long, short = 'r')]
        reason: String,
    },
    /// Deny a request; the revision never goes live, the serving one stays.
    Deny {
        id: i64,
        #[arg(long, short = 'r')]
        reason: String,
    },
}

pub fn approvals(args: &ClientArgs, command: ApprovalsCommand) -> anyhow::Result<()> {
    let client = ApiClient::new(args)?;
    let request: ApprovalRequest = match command {
        ApprovalsCommand::List { namespace, state } => {
            let requests: Vec<ApprovalRequest> = client.get_json_query(
                "/approvals",
                &[("state", Some(&state.to_string())), ("namespace", namespace.as_deref())],
            )?;
            match args.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&requests)?),
                Output::Table if requests.is_empty() => println!("No approval requests ({state})."),
                Output::Table => println!("{}", approvals_table(&requests)),
            }
            return Ok(());
        }
        ApprovalsCommand::Show { id } => client.get_json(&format!("/approvals/{id}"))?,
        ApprovalsCommand::Approve { id, reason } => {
            client.post_json(&format!("/approvals/{id}/approve"), &ApprovalVoteRequest { reason })?
        }
        ApprovalsCommand::Deny { id, reason } => {
            client.post_json(&format!("/approvals/{id}/deny"), &ApprovalVoteRequest { reason })?
        }
    };
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&request)?),
        Output::Table => print!("{}", describe_approval(&request)),
    }
    Ok(())
}

fn approvals_table(requests: &[ApprovalRequest]) -> String {
    let rows = requests.iter().map(|request| {
        let approvals = request.votes.iter().filter(|vote| vote.decision == "approve").count();
        vec![
            request.id.to_string(),
            format!("{}/{}", request.namespace, request.app),
            request.state.clone(),
            format!("{approvals}/{}", request.required),
            request.requested_by.clone(),
            request.requested_at.clone(),
            request.requests.iter().map(|asked| asked.message.clone()).collect::<Vec<_>>().join("; "),
        ]
    });
    plain_table(&["ID", "APP", "STATE", "APPROVALS", "REQUESTED BY", "REQUESTED AT", "ASKS FOR"], rows)
}

/// The `approvals show` text: the request, what it asks for, the votes, and what to do next.
pub fn describe_approval(request: &ApprovalRequest) -> String {
    let mut text = format!(
        "Request:      {}\nApp:          {}/{}\nState:        {}\nRequested by: {} at {}\nBundle:       {}\n",
        request.id,
        request.namespace,
        request.app,
        request.state,
        request.requested_by,
        request.requested_at,
        super::deploy::short_digest(&request.digest),
    );
    let approvals = request.votes.iter().filter(|vote| vote.decision == "approve").count();
    let who = match request.approvers.is_empty() {
        true => format!("operators of {}", request.namespace),
        false => request.approvers.join(", "),
    };
    text.push_str(&format!("Approvals:    {approvals} of {} needed, from {who}\n", request.required));
    if request.state == "pending" {
        text.push_str(&format!("Expires:      {} (denied if not decided by then)\n", request.expires_at));
    }
    if let Some(outcome) = &request.outcome {
        text.push_str(&format!("Outcome:      {outcome}\n"));
    }
    text.push_str("Asks for:\n");
    for asked in &request.requests {
        text.push_str(&format!("  - {}: {}\n", asked.policy, asked.message));
    }
    if !request.votes.is_empty() {
        text.push_str("Votes:\n");
        for vote in &request.votes {
            let verb = if vote.decision == "approve" { "approved" } else { "denied" };
            text.push_str(&format!("  - {} {verb} at {}: {}\n", vote.approver, vote.time, vote.reason));
        }
    }
    if request.state == "pending" {
        text.push_str(&format!(
            "Decide with `terrarium approvals approve {id} --reason \"...\"` or `terrarium approvals deny {id} --reason \"...\"`.\n",
            id = request.id
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::policy::{ApprovalVote, Kind, Mode, Violation};

    #[test]
    fn show_says_what_is_asked_who_voted_and_what_to_do() {
        let request = ApprovalRequest {
            id: 7,
            namespace: "growth".into(),
            app: "lunch".into(),
            state: "pending".into(),
            requested_by: "ana".into(),
            requested_at: "2026-11-22T10:00:00Z".into(),
            expires_at: "2026-11-25T10:00:00Z".into(),
            digest: format!("sha256:{}", "ab".repeat(32)),
            requests: vec![Violation {
                policy: "egress_hosts".into(),
                kind: Kind::Elevated,
                mode: Mode::Deny,
                message: "egress to api.weather.dev, which is not on the namespace's allowed list".into(),
            }],
            required: 2,
            approvers: vec![],
            votes: vec![ApprovalVote {
                approver: "lee".into(),
                decision: "approve".into(),
                reason: "weather data is public".into(),
                time: "2026-11-22T11:00:00Z".into(),
            }],
            revision: None,
            decided_at: None,
            outcome: None,
            justification: None,
        };
        let text = describe_approval(&request);
        assert!(text.contains("Approvals:    1 of 2 needed, from operators of growth"), "{text}");
        assert!(text.contains("  - egress_hosts: egress to api.weather.dev"), "{text}");
        assert!(text.contains("  - lee approved at 2026-11-22T11:00:00Z: weather data is public"), "{text}");
        assert!(text.contains("terrarium approvals approve 7 --reason"), "{text}");
        let table = approvals_table(&[request]);
        assert!(table.lines().nth(1).unwrap().starts_with("7 "), "{table}");
        assert!(table.contains("1/2"), "{table}");
    }
}
