use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    print!("{}", serin_api::crd::crds_yaml());
    Ok(ExitCode::SUCCESS)
}
