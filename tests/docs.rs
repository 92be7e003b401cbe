//! docs/xeps.md must list exactly the XEPs the code's module docs name.

use std::collections::BTreeSet;
use std::path::Path;

fn xeps_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("XEP-") {
        let digits: String = rest[i + 4..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if digits.len() == 4 {
            out.insert(format!("XEP-{digits}"));
        }
        rest = &rest[i + 4..];
    }
    out
}

fn module_docs(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("src dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            module_docs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source");
            let doc: String = text
                .lines()
                .take_while(|l| l.starts_with("//!"))
                .collect::<Vec<_>>()
                .join("\n");
            out.extend(xeps_in(&doc));
        }
    }
}

#[test]
fn xeps_md_matches_the_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed =
        xeps_in(&std::fs::read_to_string(root.join("docs/xeps.md")).expect("docs/xeps.md"));
    let mut in_code = BTreeSet::new();
    module_docs(&root.join("src"), &mut in_code);
    assert!(!listed.is_empty());
    let undocumented: Vec<_> = in_code.difference(&listed).collect();
    let unimplemented: Vec<_> = listed.difference(&in_code).collect();
    assert!(
        undocumented.is_empty(),
        "module docs name XEPs missing from docs/xeps.md: {undocumented:?}"
    );
    assert!(
        unimplemented.is_empty(),
        "docs/xeps.md lists XEPs no module doc names: {unimplemented:?}"
    );
}
