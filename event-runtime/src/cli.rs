//! A command line for the user's binary: `run` (the default), `check`,
//! `describe`, `lock`.
//!
//! ```no_run
//! use eventwire::prelude::*;
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let builder = match App::builder().service("inventory").transport_from_env() {
//!         Ok(b) => b,
//!         Err(e) => {
//!             eprintln!("{e}");
//!             return std::process::ExitCode::FAILURE;
//!         }
//!     };
//!     eventwire::cli::main(builder).await
//! }
//! ```
//!
//! ```text
//! inventory                                 # run until SIGINT/SIGTERM
//! inventory check                           # start-up validation; exit 1 on problems
//! inventory describe --format asyncapi      # or asyncapi-yaml, mermaid
//! inventory lock [--update] [--path eventwire.lock]
//! ```

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::app::AppBuilder;
use crate::app::{Error, Result};
use crate::describe::Description;

#[derive(Debug, Parser)]
#[command(about = "An eventwire service")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the handlers until SIGINT/SIGTERM (the default).
    Run,
    /// Validate the registry and options against the transport, start nothing.
    Check,
    /// Print a description of the events and handlers.
    Describe {
        /// Output format.
        #[arg(long, value_enum, default_value_t = DescribeFormat::Asyncapi)]
        format: DescribeFormat,
    },
    /// Check the schema lock (or rewrite it with --update).
    Lock {
        /// The lock file.
        #[arg(long, default_value = "eventwire.lock")]
        path: std::path::PathBuf,
        /// Rewrite the lock from the code.
        #[arg(long)]
        update: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DescribeFormat {
    /// AsyncAPI 3.0 as JSON.
    Asyncapi,
    /// AsyncAPI 3.0 as YAML.
    AsyncapiYaml,
    /// A Mermaid flowchart of groups and topics.
    Mermaid,
}

/// Runs the command in `args` (the first item is the program name) and
/// returns what it prints. `run` returns once the app stopped.
pub async fn execute<I, T>(builder: AppBuilder, args: I) -> Result<String>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            builder.build().await?.run().await?;
            Ok(String::new())
        }
        Command::Check => {
            builder.check().await?;
            Ok(format!(
                "{}: start-up validation passed\n",
                builder.service_name()
            ))
        }
        Command::Describe { format } => {
            let registry = builder.registry_or_global();
            let mut d = Description::new(&registry, builder.service_name())
                .handlers(builder.selection().clone());
            if let Some(url) = builder.transport_url_text() {
                d = d.server(&url);
            }
            Ok(match format {
                DescribeFormat::Asyncapi => {
                    serde_json::to_string_pretty(&d.asyncapi()).unwrap_or_default() + "\n"
                }
                DescribeFormat::AsyncapiYaml => d.asyncapi_yaml(),
                DescribeFormat::Mermaid => d.mermaid(),
            })
        }
        Command::Lock { path, update } => {
            crate::schema::check_lock_with(&path, &builder.registry_or_global(), update)?;
            Ok(format!("schema lock {} is up to date\n", path.display()))
        }
    }
}

/// [`execute`] with the process arguments: prints the output, or the error
/// on stderr, and returns the exit code (1 on any problem; 0 for `--help`).
pub async fn main(builder: AppBuilder) -> ExitCode {
    main_with_args(builder, std::env::args_os()).await
}

/// [`main`] with the given arguments (the first item is the program name).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let code = eventwire::cli::main_with_args(eventwire::App::builder(), ["svc", "--help"]).await;
/// assert_eq!(code, std::process::ExitCode::SUCCESS);
/// # }
/// ```
pub async fn main_with_args<I, T>(builder: AppBuilder, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match execute(builder, args).await {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        // `--help` arrives as a clap error whose text is the output asked
        // for: print it on stdout and succeed.
        Err(Error::Cli(e)) if !e.use_stderr() => {
            print!("{e}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:?}");
            ExitCode::FAILURE
        }
    }
}
