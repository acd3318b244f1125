//! Delivery receipts (`<result>.receipt`) on the test side: finding the one
//! for a result, and checking it against `schema/receipt.v1.json`.

use std::path::Path;
use std::sync::LazyLock;

use serde_json::Value;

/// `schema/receipt.v1.json`, compiled once.
static RECEIPT_SCHEMA: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let path = crate::workspace_root().join("schema/receipt.v1.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_slice(&bytes).expect("the receipt schema is JSON");
    jsonschema::validator_for(&schema).expect("receipt schema compiles")
});

/// The receipt of the result at `result` (same directory, name +
/// `.receipt`), schema-checked; `None` when there is none.
pub fn receipt_of(result: &Path) -> Option<Value> {
    let mut name = result.file_name()?.to_os_string();
    name.push(".receipt");
    let bytes = std::fs::read(result.with_file_name(name)).ok()?;
    let receipt: Value = serde_json::from_slice(&bytes).expect("a receipt is JSON");
    assert_receipt_valid(&receipt);
    Some(receipt)
}

/// Validates `receipt` against `schema/receipt.v1.json`; panics listing the errors.
pub fn assert_receipt_valid(receipt: &Value) {
    let errors: Vec<String> = RECEIPT_SCHEMA
        .iter_errors(receipt)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "receipt does not match schema/receipt.v1.json:\n  {}\nreceipt: {receipt:#}",
        errors.join("\n  ")
    );
}
