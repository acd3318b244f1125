//! A judge server sending hostile values, against the real binary: a
//! `Retry-After` whose arithmetic would overflow (`u64::MAX` seconds, more
//! digits than a u64 holds) must give the documented exit 4 with an error
//! result, promptly, never an abort with no result.

use std::time::Duration;

use testkit::*;

const ASSESSOR: &str = env!("CARGO_BIN_EXE_assessor");

/// A refusal to wait a day takes milliseconds; this is far below a hang and
/// far above a loaded CI machine's noise.
const PROMPTLY: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_huge_retry_after_is_an_error_result_with_exit_4() {
    for value in [
        "18446744073709551615",
        "99999999999999999999999999",
        "1e300",
    ] {
        let dir = tempdir();
        let profile = write_json(dir.path(), "profile.json", &simple_profile("h1", "a flat"));
        let server = FakeOpenAi::answering(move |_| {
            error_reply(429, &openai_error("Rate limit reached", "rate_limit_error"))
                .header("retry-after", value)
        })
        .await;
        let out = run_assessor(
            ASSESSOR,
            dir.path(),
            &llm_env(&server, dir.path(), &profile),
            &[],
        )
        .await;
        out.assert_no_panic().assert_code(4);
        assert!(
            out.elapsed < PROMPTLY,
            "Retry-After: {value}: took {:?}\n{}",
            out.elapsed,
            out.ctx()
        );
        let r = out.assert_error_result("rate_limited");
        assert_eq!(
            server.count(),
            1,
            "a wait past LLM_DEADLINE is not waited for\n{}",
            out.ctx()
        );
        assert!(
            r["error"]["message"].as_str().unwrap().contains("429"),
            "{}",
            out.ctx()
        );
        println!(
            "Retry-After: {value}: exit {} in {:?}",
            out.code, out.elapsed
        );
    }
}
