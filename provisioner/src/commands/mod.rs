//! What each subcommand does. User output goes to stdout here; a failure comes back as
//! a [`CliError`] for `main` to show and turn into the exit status (with `--json`, the
//! error is also printed on stdout as a JSON line, for scripts).

mod batch;
mod card;
mod keys;
mod sim;

use crate::cli::{Cli, CliError, Command, KeysCommand};
use crate::driver::WriteOptions;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let (json_out, result) = match cli.command {
        Command::Readers { json } => (json, card::readers(json)),
        Command::Read { reader, json } => (json, card::read(&reader, json)),
        Command::Write {
            reader,
            sun: true,
            keys: Some(keys),
            journal,
            json,
            url,
            ..
        } => (json, card::write_sun(&reader, &url, &keys, &journal, json)),
        Command::Write {
            reader,
            mirror,
            overwrite,
            password,
            set_password,
            pack,
            json,
            url,
            ..
        } => {
            let opts = WriteOptions {
                mirror,
                overwrite,
                password,
                set_password,
                pack,
            };
            (json, card::write(&reader, &url, &opts, json))
        }
        Command::Reset {
            reader,
            keys,
            journal,
            json,
        } => (json, card::reset(&reader, &keys, &journal, json)),
        Command::Lock {
            reader,
            permanent,
            password,
            json,
        } => (json, card::lock(&reader, permanent, password, json)),
        Command::Provision {
            source,
            reader,
            journal,
            non_interactive,
            sim_cards,
            no_mirror,
            lock,
            password,
            max_attempts,
            dry_run,
            json,
            sun: _,
            keys,
        } => {
            let args = batch::ProvisionArgs {
                sun_keys: keys,
                source,
                reader,
                journal,
                non_interactive,
                sim_cards,
                mirror: !no_mirror,
                lock,
                password,
                max_attempts,
                dry_run,
                json,
            };
            (json, batch::provision(&args))
        }
        Command::Print {
            source,
            layout,
            out,
            png_dir,
            template,
            layout_json,
            no_backs,
        } => {
            let job = crate::print::PrintJob {
                layout,
                out,
                png_dir,
                layout_json,
                backs: !no_backs,
            };
            (false, batch::print(&source, template.as_deref(), &job))
        }
        Command::SimCard {
            vpcd,
            tag,
            image,
            fault,
            reinsert_ms,
            reader_kind,
        } => (
            false,
            sim::sim_card(vpcd, tag, image, fault, reinsert_ms, reader_kind),
        ),
        Command::Demo { domain } => (false, sim::demo(&domain)),
        Command::Keys(KeysCommand::New { out }) => (false, keys::new(&out)),
        Command::Keys(KeysCommand::Rotate { keys: path }) => (false, keys::rotate(&path)),
    };
    if let Err(e) = &result
        && json_out
    {
        println!("{}", e.to_json());
    }
    result
}
