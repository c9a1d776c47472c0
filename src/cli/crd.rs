//! `edgewatch crd`: print the `EdgeDeviceWatch` CRD as YAML (the file in `crds/` is this
//! output), ready for `kubectl apply --server-side -f -`.

/// Arguments of `edgewatch crd` (none yet; a struct so flags can be added compatibly).
#[derive(clap::Args, Debug, Default)]
pub struct CrdArgs {}

/// Writes the CRD YAML to stdout.
pub fn run(_args: &CrdArgs) -> anyhow::Result<()> {
    let yaml = crate::api::crd_yaml().map_err(|e| anyhow::anyhow!("serialising the CRD: {e}"))?;
    print!("{yaml}");
    Ok(())
}
