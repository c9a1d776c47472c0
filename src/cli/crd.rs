//! `edgewatch crd`: print the `EdgeDeviceWatch` CRD as YAML (the file in `crds/` is this
//! output), ready for `kubectl apply --server-side -f -`.

/// Arguments of `edgewatch crd` (none yet; a struct so flags can be added compatibly).
#[derive(clap::Args, Debug, Default)]
pub struct CrdArgs {}

/// Writes the CRD YAML to stdout; exit code 2 if it cannot be serialised.
pub fn run(_args: &CrdArgs) -> std::process::ExitCode {
    match crate::api::crd_yaml() {
        Ok(yaml) => {
            print!("{yaml}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: serialising the CRD: {error}");
            std::process::ExitCode::from(2)
        }
    }
}
