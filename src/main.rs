//! The `jaseur` command: the server and the sysadmin's tool.

use clap::{Parser, Subcommand};
use jaseur::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "jaseur", version, about = "Jaseur, an XMPP server")]
struct Cli {
    /// Configuration file (default: embedded defaults).
    #[arg(short, long, global = true, env = "JASEUR_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Run,
    /// Manage accounts of the internal backend.
    #[command(subcommand)]
    User(UserCommand),
    /// Check the configuration, certificates, ports, storage and directories.
    Check,
    /// Look at a domain's LDAP directory.
    #[command(subcommand)]
    Ldap(LdapCommand),
    /// Administer conference rooms (live when the server runs, else in the database).
    #[command(subcommand)]
    Muc(MucCommand),
}

#[derive(Subcommand)]
enum MucCommand {
    /// List the rooms of a domain's MUC service (DOMAIN or conference.DOMAIN).
    List { domain: String },
    /// Make JID the only owner of ROOM (the other owners become members).
    SetOwner { room: String, jid: String },
    /// Add JID to the owners of ROOM.
    AddOwner { room: String, jid: String },
    /// Remove JID from the owners of ROOM (refused for the last owner).
    RemoveOwner { room: String, jid: String },
    /// Destroy ROOM; its occupants are told the reason.
    Destroy {
        room: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
enum LdapCommand {
    /// Check an account's password against its directory (a real bind).
    Test {
        jid: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// The running server's connections to each directory.
    Status,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account (password from --password or one line of stdin).
    Add {
        /// The account, user@domain (omit with --bulk).
        jid: Option<String>,
        #[arg(long)]
        password: Option<String>,
        /// A file of `JID PASSWORD` lines to create at once.
        #[arg(long, conflicts_with_all = ["jid", "password"])]
        bulk: Option<PathBuf>,
    },
    /// Change an account's password.
    Passwd {
        jid: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete an account (closing its sessions on a running server).
    Del { jid: String },
    /// List the accounts of a domain.
    List { domain: String },
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load_or_default(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jaseur: {e}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Run);
    init_logging(if matches!(command, Command::Run) {
        &config.log.level
    } else {
        "warn"
    });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jaseur: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Run => jaseur::server::start(config).await,
            Command::Check => jaseur::cli::check::run(&config).await,
            Command::Ldap(LdapCommand::Test { jid, password }) => {
                jaseur::cli::ldap::test(&config, &jid, password).await
            }
            Command::Ldap(LdapCommand::Status) => jaseur::cli::ldap::status(&config).await,
            Command::Muc(m) => match m {
                MucCommand::List { domain } => jaseur::cli::muc::list(&config, &domain).await,
                MucCommand::SetOwner { room, jid } => {
                    jaseur::cli::muc::set_owner(&config, &room, &jid).await
                }
                MucCommand::AddOwner { room, jid } => {
                    jaseur::cli::muc::add_owner(&config, &room, &jid).await
                }
                MucCommand::RemoveOwner { room, jid } => {
                    jaseur::cli::muc::remove_owner(&config, &room, &jid).await
                }
                MucCommand::Destroy { room, reason } => {
                    jaseur::cli::muc::destroy(&config, &room, reason).await
                }
            },
            Command::User(u) => match u {
                UserCommand::Add {
                    bulk: Some(file), ..
                } => jaseur::cli::user::add_bulk(&config, &file).await,
                UserCommand::Add {
                    jid: Some(jid),
                    password,
                    ..
                } => jaseur::cli::user::add(&config, &jid, password).await,
                UserCommand::Add { .. } => Err(anyhow::anyhow!("give a JID or --bulk FILE")),
                UserCommand::Passwd { jid, password } => {
                    jaseur::cli::user::passwd(&config, &jid, password).await
                }
                UserCommand::Del { jid } => jaseur::cli::user::del(&config, &jid).await,
                UserCommand::List { domain } => jaseur::cli::user::list(&config, &domain).await,
            },
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jaseur: {e:#}");
            ExitCode::FAILURE
        }
    }
}
