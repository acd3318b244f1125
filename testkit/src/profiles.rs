//! Profiles a test makes up (the samples are in [`crate::samples`]).

use serde_json::{Value, json};

/// A simple valid profile: text and metadata with an id, no images.
pub fn simple_profile(id: &str, text: &str) -> Value {
    json!({
        "text": text,
        "metadata": {
            "id": id,
            "price": "£300,000",
            "location": "Redland, Bristol",
            "summary": "2 bedroom flat for sale"
        }
    })
}

/// A profile with every part a notifier body carries: text, an image and
/// metadata with an id and a listing URL.
pub fn full_profile(id: &str, text: &str) -> Value {
    json!({
        "text": text,
        "images": [format!("https://images.example/{id}/front.jpg")],
        "metadata": {
            "id": id,
            "url": format!("https://listings.example/{id}"),
            "price": "£300,000",
            "location": "Redland, Bristol",
            "summary": "2 bedroom flat for sale"
        }
    })
}

/// `metadata.id` of a profile; panics when it has none.
pub fn profile_id(profile: &Value) -> String {
    profile["metadata"]["id"]
        .as_str()
        .expect("profile has metadata.id")
        .to_string()
}
