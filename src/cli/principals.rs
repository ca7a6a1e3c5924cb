//! `hrsync admins …` and `hrsync service-tokens …`: named admins, each with a token of their
//! own (the pages and the admin API; the audit trail names them), and service tokens for the
//! product that owns the log-in (the service API only). A token is printed once, when it is
//! made; the database keeps only its SHA-256.

use clap::Subcommand;

use super::ExitCode;
use crate::store::PrincipalKind;
use crate::sync::App;

#[derive(Debug, Subcommand)]
pub enum PrincipalCommand {
    /// Add one, and print its token (once: only its SHA-256 is kept).
    Add {
        /// The name: a person's for an admin (as the audit trail shows it), the product's
        /// for a service token.
        name: String,
    },
    /// List them, live and revoked.
    List,
    /// Give one a new token (printed once); the old token stops working.
    Rotate {
        /// The name it was added under.
        name: String,
    },
    /// Revoke one: its token, and for an admin every session it started, stop working. The
    /// name stays taken, since the audit trail names it.
    Revoke {
        /// The name it was added under.
        name: String,
    },
}

pub async fn run(
    app: &App,
    kind: PrincipalKind,
    command: PrincipalCommand,
) -> anyhow::Result<ExitCode> {
    let store = &app.store;
    let now = chrono::Utc::now();
    let noun = kind.noun();
    match command {
        PrincipalCommand::Add { name } => {
            let name = crate::domain::non_empty(&name)
                .ok_or_else(|| anyhow::anyhow!("a {noun} needs a name"))?;
            let token = crate::secret::random_token()
                .map_err(|_| anyhow::anyhow!("no randomness available"))?;
            store
                .add_principal(kind, &name, &crate::secret::sha256_hex(&token), now)
                .await?;
            outln!("token: {token}");
            errln!(
                "Added {noun} `{name}`. Hand the token over the way you hand over passwords; it is not shown again."
            );
        }
        PrincipalCommand::List => {
            let all = store.list_principals(kind).await?;
            if all.is_empty() {
                outln!("No {noun}s.");
            }
            for p in all {
                let created = p.created_at.format("%Y-%m-%d %H:%M");
                match p.revoked_at {
                    Some(r) => outln!(
                        "{:<24}  added {created}  revoked {}",
                        p.name,
                        r.format("%Y-%m-%d %H:%M")
                    ),
                    None => outln!("{:<24}  added {created}", p.name),
                }
            }
        }
        PrincipalCommand::Rotate { name } => {
            let token = crate::secret::random_token()
                .map_err(|_| anyhow::anyhow!("no randomness available"))?;
            if !store
                .rotate_principal(kind, &name, &crate::secret::sha256_hex(&token))
                .await?
            {
                anyhow::bail!("there is no live {noun} named `{name}`");
            }
            outln!("token: {token}");
            errln!("The earlier token of `{name}` no longer works.");
        }
        PrincipalCommand::Revoke { name } => {
            if !store.revoke_principal(kind, &name, now).await? {
                anyhow::bail!("there is no live {noun} named `{name}`");
            }
            outln!("Revoked {noun} `{name}`: its token no longer works.");
        }
    }
    Ok(ExitCode::Success)
}
