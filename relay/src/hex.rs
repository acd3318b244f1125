//! Short lowercase hex digests: the relay's ids and file-name keys (target
//! keys, `webhook-id`s, ids derived for results without one) are all a
//! prefix of a SHA-256 digest spelled in hex, spelled once in the contract
//! (receipt names use it too).

pub(crate) use shortlist_contract::hex::sha256_prefix;
