//! Assessing one profile: a sequence of stages, rules → captions → judge,
//! each of which either decides or lets the next one go on. Every outcome
//! after start-up is a result (`status: "error"` with a specific
//! `error.kind` when no verdict was reached) and an exit code ([`Exit`]).
//! Where the profile comes from and where the result goes is the caller's
//! business (one file, or a batch).

mod draft;

use std::path::Path;
use std::time::Instant;

use serde_json::Value;
use shortlist_contract::profile::stable_id;
use shortlist_contract::{AssessmentResult, DecidedBy, ErrorKind, Profile, ProfileError, Verdict};

use self::draft::{Draft, Ending};
use crate::caption::{self, Captioner};
use crate::exit::Exit;
use crate::facts::{FactsOutcome, Priors};
use crate::judge::{self, Judge, JudgeRequest, JudgeSettings};
use crate::prompt::PromptBuilder;
use crate::rules::{Rules, RulesOutcome};
use crate::setting::SettingError;

/// The settings of every stage.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) rules: Rules,
    /// The captions stage, when on.
    pub(crate) captions: Option<caption::Settings>,
    pub(crate) prompt: PromptBuilder,
    pub(crate) judge: JudgeSettings,
    pub(crate) response_cache: Option<judge::cache::Settings>,
    /// What decides a result (the result's `fingerprint`).
    pub(crate) fingerprint: Option<String>,
}

/// What a stage found: the assessment is decided (the stages after it are
/// skipped), or the next stage goes on with what this one produced.
enum Step<T> {
    GoOn(T),
    Decided(Ending),
}

/// Everything that does not change from one profile to the next: the
/// rules, the captioner, the prompt framing and the judge.
pub(crate) struct Assessor {
    rules: Rules,
    captioner: Option<Captioner>,
    prompt: PromptBuilder,
    judge: Box<dyn Judge>,
    fingerprint: Option<String>,
    /// The facts questions' content-free answers, measured once per run.
    priors: Priors,
}

impl Assessor {
    /// Builds every stage (HTTP clients, the judge) from validated settings.
    pub(crate) fn new(settings: Settings) -> Result<Self, SettingError> {
        if settings.prompt.criteria.is_none() && !matches!(settings.judge, JudgeSettings::Fixed(_))
        {
            // Said once per run: without a brief the model judges every
            // listing against a generic default, which is rarely meant.
            tracing::warn!(
                "no brief given (ASSESSOR_CRITERIA, ASSESSOR_CRITERIA_FILE or the config file's criteria): the judge accepts any genuine, complete listing"
            );
        }
        let judge = judge::build(&settings.judge, settings.response_cache.as_ref())?;
        let captioner = settings.captions.as_ref().map(Captioner::new).transpose()?;
        Ok(Assessor {
            rules: settings.rules,
            captioner,
            prompt: settings.prompt,
            judge,
            fingerprint: settings.fingerprint,
            priors: Priors::default(),
        })
    }

    /// Whether the judge loads a model in-process before its first answer
    /// (llama: seconds to minutes, which a batch's progress bar says).
    pub(crate) fn loads_a_model(&self) -> bool {
        self.judge.info().kind == "llama"
    }

    /// What decides this assessor's results (see [`Settings::fingerprint`]).
    pub(crate) fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// Assesses one profile as read (or not) from its source; local images
    /// are relative to `profile_dir`. Never fails: every outcome is a result
    /// and an exit code.
    pub(crate) async fn assess(
        &self,
        read: Result<(Profile, Value), ProfileError>,
        profile_dir: &Path,
    ) -> (AssessmentResult, Exit) {
        let (mut result, exit) = self.assess_draft(read, profile_dir).await;
        result.fingerprint = self.fingerprint.clone();
        (result, exit)
    }

    async fn assess_draft(
        &self,
        read: Result<(Profile, Value), ProfileError>,
        profile_dir: &Path,
    ) -> (AssessmentResult, Exit) {
        let mut draft = Draft::new(self.judge.info(), Instant::now());
        let (profile, profile_value) = match read {
            Ok(read) => read,
            Err(error) => {
                tracing::error!(kind = %error.kind(), error = %error, "the profile cannot be assessed");
                let ending = Ending::Failed {
                    kind: error.kind(),
                    message: error.to_string(),
                    exit: Exit::InvalidProfile,
                };
                return draft.finish(None, ending);
            }
        };
        let id = stable_id(&profile_value);
        tracing::debug!(%id, "profile read");
        let ending = self
            .stages(&profile, &profile_value, &id, profile_dir, &mut draft)
            .await;
        draft.finish(Some(profile_value), ending)
    }

    /// Rules → captions → judge, until one decides (the judge always does).
    async fn stages(
        &self,
        profile: &Profile,
        profile_value: &Value,
        id: &str,
        profile_dir: &Path,
        draft: &mut Draft,
    ) -> Ending {
        let mut notes = match self.rules_stage(profile, id, draft) {
            Step::GoOn(notes) => notes,
            Step::Decided(ending) => return ending,
        };
        match self.facts_stage(profile, id, draft).await {
            Step::GoOn(more) => notes.extend(more),
            Step::Decided(ending) => return ending,
        }
        let captions = match self.captions_stage(profile, id, profile_dir, draft).await {
            Step::GoOn(captions) => captions,
            Step::Decided(ending) => return ending,
        };
        self.judge_stage(profile, profile_value, id, notes, &captions, draft)
            .await
    }

    /// The rules: a reject decides; a pass goes on with its notes.
    fn rules_stage(&self, profile: &Profile, id: &str, draft: &mut Draft) -> Step<Vec<String>> {
        let started = Instant::now();
        let outcome = self.rules.evaluate(profile);
        draft.time("rules", started);
        match outcome {
            RulesOutcome::Reject { rules, reasons } => {
                tracing::info!(%id, ?rules, "rejected by rules; no backend asked");
                Step::Decided(Ending::Decided {
                    verdict: Verdict::Reject,
                    score: None,
                    score_source: None,
                    reasons,
                    decided_by: DecidedBy::Rules,
                })
            }
            RulesOutcome::Pass { notes } => {
                Step::GoOn(notes.into_iter().map(|n| format!("rules: {n}")).collect())
            }
        }
    }

    /// The facts, when any are declared: patterns first, then one narrow
    /// question to the judge per fact still unknown; a failing fact rejects,
    /// all known and passing accept, otherwise the judge goes on with notes.
    async fn facts_stage(
        &self,
        profile: &Profile,
        id: &str,
        draft: &mut Draft,
    ) -> Step<Vec<String>> {
        let facts = self.rules.facts();
        if facts.is_empty() {
            return Step::GoOn(Vec::new());
        }
        let started = Instant::now();
        let mut findings = facts.by_patterns(profile);
        let to_ask = facts.to_ask(&findings);
        // The verdict prompt's nonce: one the listing does not contain.
        let nonce = if to_ask.is_empty() {
            String::new()
        } else {
            self.prompt.build(profile, &[]).nonce
        };
        let mut asked = 0;
        for index in to_ask {
            let (answer, costs) = facts
                .ask(index, self.judge.as_ref(), profile, &nonce, &self.priors)
                .await;
            for stats in costs {
                draft.attempts += stats.attempts;
                draft.add_usage(stats.usage);
            }
            match answer {
                Ok(Some(finding)) => {
                    asked += 1;
                    findings[index] = finding;
                }
                // This judge does not answer questions: patterns only.
                Ok(None) => break,
                Err(error) => {
                    // The verdict request will meet the same server and
                    // report the error properly; no more questions.
                    tracing::warn!(%id, error = %error, "a fact's question failed; it stays unknown");
                    break;
                }
            }
        }
        draft.time("facts", started);
        draft.facts = Some(facts.records(&findings));
        let outcome = facts.decide(&findings);
        tracing::debug!(%id, asked, outcome = ?outcome, "facts stage done");
        match outcome {
            FactsOutcome::Reject(reasons) => {
                tracing::info!(%id, "rejected by facts; the judge was not asked for a verdict");
                Step::Decided(Ending::Decided {
                    verdict: Verdict::Reject,
                    score: None,
                    score_source: None,
                    reasons,
                    decided_by: DecidedBy::Facts,
                })
            }
            FactsOutcome::Accept(reasons) => {
                tracing::info!(%id, "accepted by facts; the judge was not asked for a verdict");
                Step::Decided(Ending::Decided {
                    verdict: Verdict::Accept,
                    score: None,
                    score_source: None,
                    reasons,
                    decided_by: DecidedBy::Facts,
                })
            }
            FactsOutcome::Undecided(notes) => {
                Step::GoOn(notes.into_iter().map(|n| format!("facts: {n}")).collect())
            }
        }
    }

    /// The captions, when the stage is on: a failure decides only under
    /// `CAPTION_REQUIRED`; otherwise the judge goes on with the captions
    /// that worked.
    async fn captions_stage(
        &self,
        profile: &Profile,
        id: &str,
        profile_dir: &Path,
        draft: &mut Draft,
    ) -> Step<Vec<String>> {
        let Some(captioner) = &self.captioner else {
            return Step::GoOn(Vec::new());
        };
        let started = Instant::now();
        let outcome = captioner.run(profile.images(), profile_dir).await;
        draft.time("captions", started);
        draft.add_usage(outcome.usage);
        let captions = outcome.captions();
        let failures: Vec<String> = outcome
            .failures()
            .filter_map(|r| {
                let error = r.error.as_ref()?;
                Some(format!("{} ({}: {})", r.image, error.kind, error.message))
            })
            .collect();
        tracing::info!(
            %id,
            images = outcome.records.len(),
            captioned = captions.len(),
            failed = failures.len(),
            "captions stage done"
        );
        let transient = outcome
            .failures()
            .filter_map(|r| r.error.as_ref())
            .any(|e| e.kind.is_transient());
        // A vision server refusing the key, model or URL refuses every image
        // of every profile: a configuration error (exit 2), required or not.
        let refused = outcome
            .failures()
            .filter_map(|r| r.error.as_ref())
            .find(|e| {
                matches!(
                    e.kind,
                    ErrorKind::BackendUnauthorized | ErrorKind::BackendNotFound
                )
            })
            .cloned();
        draft.captions = Some(outcome.records);
        if let Some(error) = refused {
            tracing::error!(%id, kind = %error.kind, "the vision server refused the configuration");
            return Step::Decided(Ending::Failed {
                kind: error.kind,
                message: format!("captions: {}", error.message),
                exit: Exit::BackendRefused,
            });
        }
        if captioner.required && !failures.is_empty() {
            let message = format!(
                "{} of the profile's images could not be captioned and CAPTION_REQUIRED=true: {}",
                failures.len(),
                failures.join("; ")
            );
            tracing::error!(%id, "{message}");
            return Step::Decided(Ending::Failed {
                kind: ErrorKind::CaptionsFailed,
                message,
                // Only a failure that a retry could fix is worth the Job's retries.
                exit: if transient {
                    Exit::BackendFailed
                } else {
                    Exit::InvalidProfile
                },
            });
        }
        Step::GoOn(captions)
    }

    /// The judge: always decides, with a verdict or an error.
    async fn judge_stage(
        &self,
        profile: &Profile,
        profile_value: &Value,
        id: &str,
        notes: Vec<String>,
        captions: &[String],
        draft: &mut Draft,
    ) -> Ending {
        let prompt = self.prompt.build(profile, captions);
        let request = JudgeRequest {
            profile,
            profile_value,
            prompt: &prompt,
            builder: &self.prompt,
            criteria: self.prompt.criteria.as_deref(),
            captions,
        };
        let started = Instant::now();
        let (outcome, stats) = self.judge.judge(&request).await;
        draft.time(self.judge.timing_key(), started);
        for (stage, ms) in &stats.timings {
            draft.timing(stage, *ms);
        }
        draft.attempts += stats.attempts;
        draft.cached = Some(stats.cached);
        draft.add_usage(stats.usage);

        match outcome {
            Ok(decision) => {
                let mut reasons = decision.reasons;
                reasons.extend(notes);
                reasons.extend(prompt.truncation_note);
                tracing::info!(
                    %id,
                    verdict = decision.verdict.as_str(),
                    attempts = stats.attempts,
                    "assessed"
                );
                Ending::Decided {
                    verdict: decision.verdict,
                    score: decision.score,
                    score_source: decision.score_source,
                    reasons,
                    decided_by: decision.decided_by,
                }
            }
            Err(error) => {
                tracing::error!(%id, kind = %error.kind(), error = %error, attempts = stats.attempts, "the backend failed");
                Ending::Failed {
                    kind: error.kind(),
                    message: error.to_string(),
                    exit: error.exit(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use serde_json::json;
    use shortlist_contract::{BackendInfo, Status};

    use super::*;
    use crate::judge::{Decision, JudgeError, JudgeFuture, JudgeStats};
    use crate::prompt::ReplyStyle;

    /// A judge that answers with a canned outcome and counts its calls.
    struct StubJudge {
        outcome: Result<Decision, JudgeError>,
        calls: Arc<AtomicU32>,
    }

    impl Judge for StubJudge {
        fn info(&self) -> BackendInfo {
            BackendInfo {
                kind: "stub".into(),
                model: Some("canned".into()),
            }
        }

        fn timing_key(&self) -> &'static str {
            "stub"
        }

        fn judge<'a>(&'a self, _request: &'a JudgeRequest<'a>) -> JudgeFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let outcome = self.outcome.clone();
            Box::pin(async move {
                let mut stats = JudgeStats::default();
                stats.attempts = 2;
                (outcome, stats)
            })
        }
    }

    /// An assessor whose rules forbid auctions, with a stub judge; and the
    /// judge's call counter.
    fn assessor(outcome: Result<Decision, JudgeError>) -> (Assessor, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let assessor = Assessor {
            rules: Rules::parse(r#"{"forbid": ["\\bauction\\b"]}"#, "test rules").unwrap(),
            captioner: None,
            prompt: PromptBuilder {
                criteria: Some("Two bedrooms.".into()),
                instructions: None,
                style: ReplyStyle::Json,
                max_text_chars: 20_000,
                nonce_seed: Some(1),
                run_nonce: String::new(),
            },
            judge: Box::new(StubJudge {
                outcome,
                calls: Arc::clone(&calls),
            }),
            fingerprint: None,
            priors: Priors::default(),
        };
        (assessor, calls)
    }

    fn read(text: &str) -> Result<(Profile, Value), ProfileError> {
        let value = json!({"id": "p1", "text": text});
        Profile::from_slice(&serde_json::to_vec(&value).unwrap(), "p1.json")
    }

    fn accept() -> Result<Decision, JudgeError> {
        Ok(Decision {
            verdict: Verdict::Accept,
            score: Some(0.9),
            score_source: Some(shortlist_contract::ScoreSource::Stated),
            reasons: vec!["two bedrooms".into()],
            decided_by: DecidedBy::Llm,
        })
    }

    #[tokio::test]
    async fn the_rules_decide_without_asking_the_judge() {
        let (assessor, calls) = assessor(accept());
        let (result, exit) = assessor
            .assess(read("A flat, for sale by auction."), Path::new("."))
            .await;
        assert_eq!(exit, Exit::Assessed);
        assert_eq!(result.verdict, Some(Verdict::Reject));
        assert_eq!(result.decided_by, Some(DecidedBy::Rules));
        assert_eq!(result.status, Some(Status::Ok));
        assert_eq!(result.attempts, Some(0));
        assert_eq!(calls.load(Ordering::SeqCst), 0, "the judge was asked");
        let timings = result.timings_ms.unwrap();
        assert!(timings.contains_key("rules") && !timings.contains_key("stub"));
    }

    #[tokio::test]
    async fn the_judge_decides_when_the_rules_pass() {
        let (assessor, calls) = assessor(accept());
        let (result, exit) = assessor
            .assess(read("A two-bedroom flat."), Path::new("."))
            .await;
        assert_eq!(exit, Exit::Assessed);
        assert_eq!(result.verdict, Some(Verdict::Accept));
        assert_eq!(result.score, Some(0.9));
        assert_eq!(result.decided_by, Some(DecidedBy::Llm));
        assert_eq!(result.reasons, Some(vec!["two bedrooms".to_string()]));
        assert_eq!(result.attempts, Some(2));
        assert_eq!(result.cached, Some(false));
        assert!(result.id.is_some(), "the result names the profile");
        assert_eq!(result.backend.unwrap().kind, "stub");
        assert!(result.timings_ms.unwrap().contains_key("stub"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_judge_error_is_an_error_result_and_exit_4() {
        let (assessor, _calls) = assessor(Err(JudgeError::Unavailable {
            url: "http://judge.invalid/v1/chat/completions".into(),
            detail: "connection refused".into(),
        }));
        let (result, exit) = assessor
            .assess(read("A two-bedroom flat."), Path::new("."))
            .await;
        assert_eq!(exit, Exit::BackendFailed);
        assert_eq!(result.status, Some(Status::Error));
        assert_eq!(result.verdict, None);
        let error = result.error.flatten().unwrap();
        assert_eq!(error.kind, "backend_unavailable");
        assert!(error.message.contains("connection refused"), "{error:?}");
        assert_eq!(
            result.attempts,
            Some(2),
            "attempts are recorded for failures too"
        );
        assert!(result.profile.is_some());
    }

    #[tokio::test]
    async fn an_unreadable_profile_is_an_error_result_and_exit_3() {
        let (assessor, calls) = assessor(accept());
        let read = Profile::from_slice(b"[]", "bad.json");
        let (result, exit) = assessor.assess(read, Path::new(".")).await;
        assert_eq!(exit, Exit::InvalidProfile);
        assert_eq!(result.status, Some(Status::Error));
        assert_eq!(result.error.flatten().unwrap().kind, "profile_invalid");
        assert!(result.profile.is_none() && result.id.is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }
}
