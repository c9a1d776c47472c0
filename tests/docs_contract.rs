//! The contract is written down: every reason the code can publish is in
//! docs/contract.md and in the README's contract table.

use edgewatch::health::report::Reason;

fn reasons() -> Vec<String> {
    let schema = serde_json::to_value(schemars::schema_for!(Reason)).unwrap();
    let names: Vec<String> = schema["enum"]
        .as_array()
        .or_else(|| schema["oneOf"].as_array())
        .expect("Reason is a string enum")
        .iter()
        .map(|v| v.as_str().expect("a reason name").to_owned())
        .collect();
    assert!(names.len() > 30, "{names:?}");
    names
}

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn every_reason_is_documented_in_the_contract_and_the_readme() {
    let contract = read("docs/contract.md");
    let readme = read("README.md");
    for reason in reasons() {
        let quoted = format!("`{reason}`");
        assert!(
            contract.contains(&quoted),
            "docs/contract.md lacks {quoted}"
        );
        assert!(readme.contains(&quoted), "README.md lacks {quoted}");
    }
}
