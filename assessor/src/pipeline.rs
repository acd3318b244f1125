//! The assessment pipeline: read the profile, run the rules, caption the
//! images (when configured), ask the judge, write the result. Every failure
//! after start-up still produces a result with `status: "error"` and a
//! specific `error.kind`, and maps to an exit code ([`Exit`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Instant;

use serde_json::Value;
use shortlist_shared::profile::{MAX_PROFILE_BYTES, source_name, stable_id};
use shortlist_shared::result::now_rfc3339;
use shortlist_shared::{
    AssessmentResult, BackendInfo, CaptionRecord, DecidedBy, ErrorInfo, Profile, ProfileError,
    RESULT_SCHEMA_ID, Status, Verdict,
};

use crate::backend::{self, JudgeRequest};
use crate::caption::Captioner;
use crate::caption::error::is_transient_kind;
use crate::config::{BackendKind, Settings};
use crate::exit::Exit;
use crate::output::{print_stdout, render, write_result};
use crate::prompt::{PromptBuilder, ReplyStyle};
use crate::rules::RulesOutcome;

/// Runs the assessor with validated settings: one profile, or a batch when
/// the input is a directory or a JSONL file.
pub async fn run(settings: Settings) -> Exit {
    if settings.batch.is_none() {
        if let Some(eval) = &settings.eval {
            return run_eval(eval);
        }
    }
    let assessor = match Assessor::new(settings) {
        Ok(assessor) => assessor,
        Err(error) => {
            eprintln!("assessor: {error}");
            return Exit::Usage;
        }
    };
    if assessor.settings.batch.is_some() {
        let eval = assessor.settings.eval.clone();
        let exit = crate::batch::run(std::sync::Arc::new(assessor)).await;
        return match (&eval, exit) {
            (Some(eval), Exit::Assessed | Exit::InvalidProfile | Exit::BackendFailed) => {
                let scored = run_eval(eval);
                if scored == Exit::Assessed {
                    exit
                } else {
                    scored
                }
            }
            _ => exit,
        };
    }
    let settings = &assessor.settings;
    let read = read_profile(&settings.profile_path);
    let (result, exit) = assessor
        .assess(read, &profile_dir(&settings.profile_path))
        .await;
    finish(settings, result, exit)
}

/// Scores results against labels and prints the report.
fn run_eval(settings: &crate::eval::EvalSettings) -> Exit {
    match crate::eval::run(settings) {
        Ok(report) => {
            let _ = print_stdout(crate::eval::markdown(&report).as_bytes());
            Exit::Assessed
        }
        Err(error) => {
            eprintln!("assessor: {error}");
            Exit::Usage
        }
    }
}

/// Everything that does not change from one profile to the next: the
/// settings, the judge, the captioner and the prompt framing.
pub struct Assessor {
    pub settings: Settings,
    judge: Box<dyn backend::Judge>,
    captioner: Option<Captioner>,
    builder: PromptBuilder,
}

impl Assessor {
    pub fn new(settings: Settings) -> Result<Self, crate::config::ConfigError> {
        let judge = backend::with_cache(&settings, backend::from_settings(&settings)?);
        let captioner = settings
            .caption
            .as_ref()
            .map(|c| Captioner::new(c, settings.cache_dir.as_deref()))
            .transpose()?;
        let builder = PromptBuilder {
            criteria: settings.criteria.clone(),
            instructions: settings.system_prompt.clone(),
            style: if settings.positive_regex.is_some() {
                ReplyStyle::PlainText
            } else {
                ReplyStyle::Json
            },
            max_text_chars: settings.max_text_chars,
            nonce_seed: settings.seed,
        };
        Ok(Assessor {
            settings,
            judge,
            captioner,
            builder,
        })
    }

    /// The backend named in results.
    pub fn backend_info(&self) -> BackendInfo {
        self.judge.info()
    }

    /// Assesses one profile as read (or not) from its source; local images
    /// are relative to `profile_dir`. Never fails: every outcome is a result
    /// and an exit code.
    pub async fn assess(
        &self,
        read: Result<(Profile, Value), ProfileError>,
        profile_dir: &std::path::Path,
    ) -> (AssessmentResult, Exit) {
        let settings = &self.settings;
        let judge = &self.judge;
        let started = Instant::now();
        let mut assessment = Assessment::new(settings, judge.info());

        let (profile, profile_value) = match read {
            Ok(read) => read,
            Err(error) => {
                tracing::error!(kind = error.kind(), error = %error, "the profile cannot be assessed");
                let result = assessment.error(None, error.kind(), error.to_string(), started);
                return (result, Exit::InvalidProfile);
            }
        };
        let id = stable_id(&profile_value);
        tracing::debug!(%id, "profile read");
        let rules_started = Instant::now();
        let rules_outcome = settings.rules.evaluate(&profile);
        assessment.time("rules", rules_started);
        let notes = match rules_outcome {
            RulesOutcome::Reject { rules, reasons } => {
                tracing::info!(%id, ?rules, "rejected by rules; no backend asked");
                let result = assessment.decided(
                    profile_value,
                    Verdict::Reject,
                    None,
                    reasons,
                    DecidedBy::Rules,
                    started,
                );
                return (result, Exit::Assessed);
            }
            RulesOutcome::Pass { notes } => notes,
        };

        let mut captions = Vec::new();
        if let Some(captioner) = &self.captioner {
            let captions_started = Instant::now();
            let outcome = captioner.run(profile.images(), profile_dir).await;
            assessment.time("captions", captions_started);
            assessment.add_usage(outcome.usage);
            captions = outcome.captions();
            let failures: Vec<String> = outcome
                .failures()
                .map(|r| {
                    let error = r.error.as_ref().expect("failures have errors");
                    format!("{} ({}: {})", r.image, error.kind, error.message)
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
                .any(|e| is_transient_kind(&e.kind));
            assessment.captions = Some(outcome.records);
            if captioner.required && !failures.is_empty() {
                let message = format!(
                    "{} of the profile's images could not be captioned and CAPTION_REQUIRED=true: {}",
                    failures.len(),
                    failures.join("; ")
                );
                tracing::error!(%id, "{message}");
                let result =
                    assessment.error(Some(profile_value), "captions_failed", message, started);
                // Only a failure that a retry could fix is worth the Job's retries.
                let exit = if transient {
                    Exit::BackendFailed
                } else {
                    Exit::InvalidProfile
                };
                return (result, exit);
            }
        }

        let builder = &self.builder;
        let prompt = builder.build(&profile, &captions);
        let request = JudgeRequest {
            profile: &profile,
            profile_value: &profile_value,
            prompt: &prompt,
            builder,
            criteria: settings.criteria.as_deref(),
            captions: &captions,
        };
        let judge_started = Instant::now();
        let (outcome, stats) = judge.judge(&request).await;
        assessment.time(judge_timing_key(settings.backend), judge_started);
        for (stage, ms) in &stats.timings {
            assessment.timings.insert(stage.to_string(), *ms);
        }
        assessment.attempts = stats.attempts;
        assessment.cached = Some(stats.cached);
        assessment.add_usage(stats.usage);

        match outcome {
            Ok(decision) => {
                let mut reasons = decision.reasons;
                reasons.extend(notes.into_iter().map(|n| format!("rules: {n}")));
                reasons.extend(prompt.truncation_note);
                tracing::info!(
                    %id,
                    verdict = decision.verdict.as_str(),
                    attempts = stats.attempts,
                    "assessed"
                );
                let result = assessment.decided(
                    profile_value,
                    decision.verdict,
                    decision.score,
                    reasons,
                    decision.decided_by,
                    started,
                );
                (result, Exit::Assessed)
            }
            Err(error) => {
                tracing::error!(%id, kind = error.kind(), error = %error, attempts = stats.attempts, "the backend failed");
                let result = assessment.error(
                    Some(profile_value),
                    error.kind(),
                    error.to_string(),
                    started,
                );
                (result, Exit::BackendFailed)
            }
        }
    }
}

fn judge_timing_key(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Openai => "llm",
        #[cfg(feature = "llama")]
        BackendKind::Llama => "llm",
        BackendKind::Command => "command",
        BackendKind::Fixed => "fixed",
    }
}

/// The directory local image paths are relative to: the profile file's, or
/// the working directory for a profile read from stdin.
fn profile_dir(profile_path: &std::path::Path) -> std::path::PathBuf {
    match profile_path.parent() {
        Some(dir) if profile_path.as_os_str() != "-" && !dir.as_os_str().is_empty() => {
            dir.to_path_buf()
        }
        _ => std::path::PathBuf::from("."),
    }
}

/// Reads the profile from a file or, for `-`, from stdin.
fn read_profile(path: &std::path::Path) -> Result<(Profile, Value), ProfileError> {
    if path.as_os_str() != "-" {
        return Profile::read_file(path);
    }
    let name = source_name(path);
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_PROFILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| ProfileError::Unreadable {
            source_name: name.clone(),
            error,
        })?;
    Profile::from_slice(&bytes, &name)
}

/// Writes the result and decides the exit code: `ResultUnwritable` wins over
/// everything, since a result nobody can read is the worst outcome.
fn finish(settings: &Settings, result: AssessmentResult, exit: Exit) -> Exit {
    match write_result(settings.result_path.as_deref(), &result) {
        Ok(()) => exit,
        Err(error) => {
            tracing::error!(error = %error, "the result could not be written; printing it on stdout instead");
            eprintln!("assessor: {error}");
            // Best effort: stdout may be what failed.
            let _ = print_stdout(&render(&result));
            Exit::ResultUnwritable
        }
    }
}

/// The parts of a result known before the outcome.
struct Assessment {
    backend: BackendInfo,
    timings: BTreeMap<String, u64>,
    attempts: u32,
    usage: Option<shortlist_shared::Usage>,
    captions: Option<Vec<CaptionRecord>>,
    cached: Option<bool>,
}

impl Assessment {
    fn new(_settings: &Settings, backend: BackendInfo) -> Self {
        Assessment {
            backend,
            timings: BTreeMap::new(),
            attempts: 0,
            usage: None,
            captions: None,
            cached: None,
        }
    }

    /// Adds a stage's tokens (the vision requests', the judge's); the judge's
    /// speed figures are kept as it reported them.
    fn add_usage(&mut self, usage: Option<shortlist_shared::Usage>) {
        let Some(usage) = usage else { return };
        match &mut self.usage {
            None => self.usage = Some(usage),
            Some(total) => {
                total.prompt_tokens += usage.prompt_tokens;
                total.completion_tokens += usage.completion_tokens;
                total.prompt_tokens_per_second = usage
                    .prompt_tokens_per_second
                    .or(total.prompt_tokens_per_second);
                total.generation_tokens_per_second = usage
                    .generation_tokens_per_second
                    .or(total.generation_tokens_per_second);
            }
        }
    }

    fn time(&mut self, stage: &str, since: Instant) {
        self.timings
            .insert(stage.to_string(), since.elapsed().as_millis() as u64);
    }

    fn base(&mut self, profile: Option<Value>, started: Instant) -> AssessmentResult {
        self.time("total", started);
        AssessmentResult {
            schema: Some(RESULT_SCHEMA_ID.to_string()),
            id: profile.as_ref().map(stable_id),
            status: Some(Status::Ok),
            verdict: None,
            score: None,
            reasons: Some(Vec::new()),
            decided_by: None,
            profile,
            backend: Some(self.backend.clone()),
            usage: Some(self.usage),
            timings_ms: Some(self.timings.clone()),
            captions: self.captions.clone(),
            cached: self.cached,
            attempts: Some(self.attempts),
            error: Some(None),
            assessor: Some(crate::assessor_info()),
            assessed_at: Some(now_rfc3339()),
            extra: Default::default(),
        }
    }

    fn decided(
        &mut self,
        profile: Value,
        verdict: Verdict,
        score: Option<f64>,
        reasons: Vec<String>,
        decided_by: DecidedBy,
        started: Instant,
    ) -> AssessmentResult {
        let mut result = self.base(Some(profile), started);
        result.verdict = Some(verdict);
        result.score = score;
        result.reasons = Some(reasons);
        result.decided_by = Some(decided_by);
        result
    }

    fn error(
        &mut self,
        profile: Option<Value>,
        kind: &str,
        message: String,
        started: Instant,
    ) -> AssessmentResult {
        let mut result = self.base(profile, started);
        result.status = Some(Status::Error);
        result.error = Some(Some(ErrorInfo {
            kind: kind.to_string(),
            message,
        }));
        result
    }
}
