//! `ASSESSOR_MODE`, PROFILE_PATH and the batch, eval and shortlist settings →
//! [`batch::Settings`], [`eval::Settings`] and [`shortlist::Settings`].

use std::path::Path;

use super::args::{Cli, JudgeKind, RunMode};
use crate::batch::{self, input::InputFormat, shard::Shard};
use crate::setting::SettingError;
use crate::{eval, shortlist};

/// Batch mode's settings, or `None` for a single profile. Batch mode is
/// `batch` given explicitly, or a PROFILE_PATH that is a directory or a
/// `.jsonl` file.
pub(super) fn batch_settings(
    cli: &Cli,
    profile_path: &Path,
) -> Result<Option<batch::Settings>, SettingError> {
    let format = InputFormat::detect(profile_path);
    let format = match (cli.mode, format) {
        (Some(RunMode::Assess), _) | (None, None) => return Ok(None),
        (Some(RunMode::Batch | RunMode::Eval | RunMode::Shortlist), None) => {
            return Err(SettingError::Invalid {
                variable: "PROFILE_PATH",
                value: profile_path.display().to_string(),
                message: if profile_path.exists() {
                    "batch mode reads a directory of profiles (*.json, *.txt, *.md) or a .jsonl file".into()
                } else {
                    "no such directory or file".into()
                },
            });
        }
        (_, Some(format)) => format,
    };
    if cli.input.text {
        // A batch reads *.txt and *.md files as text by their names, and a
        // JSONL holds JSON lines: PROFILE_TEXT would be silently ignored.
        return Err(SettingError::Invalid {
            variable: "PROFILE_TEXT",
            value: "true".into(),
            message: "reads one profile (a file or stdin) as plain text; a batch directory's *.txt and *.md files are read as text by their names".into(),
        });
    }
    let result_dir = match (&cli.batch.result_dir, &cli.input.result_path) {
        (Some(dir), _) => dir.clone(),
        (None, Some(path)) if path.is_dir() => path.clone(),
        _ => {
            return Err(SettingError::Missing {
                variable: "RESULT_DIR",
                why: "in batch mode (the directory results are written to, one <id>.json per profile)",
            });
        }
    };
    if result_dir.exists() && !result_dir.is_dir() {
        return Err(SettingError::Invalid {
            variable: "RESULT_DIR",
            value: result_dir.display().to_string(),
            message: "exists and is not a directory".into(),
        });
    }
    let shard = match (
        &cli.batch.shard,
        cli.batch.shard_index,
        cli.batch.shard_count,
    ) {
        (Some(spec), _, _) if !spec.trim().is_empty() => {
            Some(Shard::parse(spec).map_err(|message| SettingError::Invalid {
                variable: "ASSESSOR_SHARD",
                value: spec.clone(),
                message,
            })?)
        }
        (_, Some(index), Some(count)) => {
            Some(
                Shard::new(index, count).map_err(|message| SettingError::Invalid {
                    variable: "JOB_COMPLETION_INDEX",
                    value: index.to_string(),
                    message: format!("{message} (ASSESSOR_SHARD_COUNT={count})"),
                })?,
            )
        }
        (_, Some(_), None) => {
            return Err(SettingError::Missing {
                variable: "ASSESSOR_SHARD_COUNT",
                why: "when JOB_COMPLETION_INDEX is set in batch mode (the Indexed Job's completions, which Kubernetes does not pass to the pod)",
            });
        }
        (_, None, Some(_)) => {
            return Err(SettingError::Missing {
                variable: "JOB_COMPLETION_INDEX",
                why: "when ASSESSOR_SHARD_COUNT is set (or give ASSESSOR_SHARD=INDEX/COUNT)",
            });
        }
        _ => None,
    };
    let jobs = cli
        .batch
        .jobs
        .map(|j| j as usize)
        .unwrap_or(match cli.judge.backend {
            JudgeKind::Openai | JudgeKind::Fixed => 16,
            JudgeKind::Command => 4,
            // Decoded together in one llama.cpp batch (continuous
            // batching): four replies at once gave the most profiles per
            // second on 2 cores (docs/BENCHMARKS.md).
            #[cfg(feature = "llama")]
            JudgeKind::Llama => 4,
        });
    Ok(Some(batch::Settings {
        input: profile_path.to_path_buf(),
        format,
        result_dir,
        results_jsonl: cli.batch.results_jsonl.clone(),
        jobs,
        shard,
        force: cli.batch.force,
        drain_timeout: cli.batch.drain_timeout,
        await_delivery: cli.input.await_delivery.filter(|wait| !wait.is_zero()),
        prices: cli.batch.prices,
    }))
}

/// `eval`'s settings: the labels and the results to score.
pub(super) fn eval_settings(cli: &Cli) -> Result<Option<eval::Settings>, SettingError> {
    if cli.mode != Some(RunMode::Eval) {
        return Ok(None);
    }
    let labels = cli.eval.labels.clone().ok_or(SettingError::Missing {
        variable: "EVAL_LABELS",
        why: "for eval (a JSON object of profile id -> \"accept\" | \"reject\")",
    })?;
    let results = cli.batch.result_dir.clone().ok_or(SettingError::Missing {
        variable: "RESULT_DIR",
        why: "for eval (the directory of results to score)",
    })?;
    Ok(Some(eval::Settings {
        labels,
        results,
        against: cli.eval.against.clone(),
        report: cli.eval.report.clone(),
        html: cli.eval.html.clone(),
        fail_under: cli.eval.fail_under.clone(),
    }))
}

/// `shortlist`'s settings: the results to list and how; `None` in any
/// other mode.
pub(super) fn shortlist_settings(cli: &Cli) -> Result<Option<shortlist::Settings>, SettingError> {
    if cli.mode != Some(RunMode::Shortlist) {
        return Ok(None);
    }
    let results = cli.batch.result_dir.clone().ok_or(SettingError::Missing {
        variable: "RESULT_DIR",
        why: "for shortlist (the directory of results to list)",
    })?;
    if !results.is_dir() {
        return Err(SettingError::Invalid {
            variable: "RESULT_DIR",
            value: results.display().to_string(),
            message: if results.exists() {
                "is not a directory".into()
            } else {
                "no such directory".into()
            },
        });
    }
    Ok(Some(shortlist::Settings {
        results,
        format: cli.shortlist.format.into(),
        output: cli.shortlist.output.clone(),
    }))
}
