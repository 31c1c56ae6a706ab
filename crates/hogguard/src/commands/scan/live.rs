//! `scan --verify` and `scan --revoke`: what PostHog says of the secrets a scan found.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};
use hogguard_posthog::{ClientConfig, Revoker, Verifier};
use hogguard_scan::{Finding, Revocation, Verification};
use hogguard_secret::Secret;

use crate::audit::Recorder;
use crate::config::Config;
use crate::interrupt::{self, Deferral};
use crate::printer::Printer;
use crate::verification::{deployment, is_verifiable, verification};

/// Asks PostHog about every verifiable finding, once per distinct secret.
pub(super) fn verify(
    findings: &mut [Finding],
    config: &Config,
    recorder: &Recorder<'_>,
) -> Result<()> {
    let targets: Vec<usize> = (0..findings.len())
        .filter(|&i| is_verifiable(findings[i].kind))
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let secrets: Vec<Secret> = targets.iter().map(|&i| findings[i].value.clone()).collect();
    let _audited = Deferral::start();
    let statuses =
        Verifier::new(deployment(config)?, &ClientConfig::default()).verify_all(&secrets);
    let mut logged = std::collections::HashSet::new();
    for (&i, status) in targets.iter().zip(statuses) {
        let finding = &mut findings[i];
        finding.verification = Some(verification(&status));
        if logged.insert(finding.fingerprint.clone()) {
            // The probe failed when PostHog could not say whether the key is live.
            recorder.record(
                "key.verified",
                &finding.masked,
                status.as_str() != "unknown",
                &[
                    ("status", status.as_str().into()),
                    ("kind", finding.kind.as_str().into()),
                    ("fingerprint", finding.fingerprint.clone().into()),
                    ("found_in", finding.path.clone().into()),
                ],
            )?;
        }
    }
    Ok(())
}

/// Reports every live secret to PostHog's leaked-key endpoint, after confirmation.
pub(super) fn revoke(
    findings: &mut [Finding],
    config: &Config,
    yes: bool,
    printer: &Printer,
    recorder: &Recorder<'_>,
) -> Result<()> {
    let live: Vec<usize> = (0..findings.len())
        .filter(|&i| {
            findings[i].secret
                && findings[i]
                    .verification
                    .as_ref()
                    .is_some_and(|v| v.status == "live")
        })
        .collect();
    let mut distinct: Vec<usize> = Vec::new();
    for &i in &live {
        if !distinct
            .iter()
            .any(|&d| findings[d].fingerprint == findings[i].fingerprint)
        {
            distinct.push(i);
        }
    }
    if distinct.is_empty() {
        printer.note("no live secret to revoke");
        return Ok(());
    }
    if !yes && !confirm(distinct.len())? {
        bail!("revocation cancelled");
    }
    let revoker = Revoker::new(deployment(config)?, &ClientConfig::default());
    let _audited = Deferral::start();
    for (done, &i) in distinct.iter().enumerate() {
        if interrupt::requested() {
            printer.warning(&format!(
                "interrupted: {} live secrets were not reported to PostHog",
                distinct.len() - done
            ));
            break;
        }
        let region = findings[i]
            .verification
            .as_ref()
            .and_then(|v| v.region.as_deref())
            .and_then(|r| {
                [hogguard_posthog::Region::Us, hogguard_posthog::Region::Eu]
                    .into_iter()
                    .find(|x| x.as_str() == r)
            });
        // Written before PostHog is asked, so a log that cannot be written stops the
        // revocation instead of leaving it unrecorded.
        recorder.record(
            "key.revoke_started",
            &findings[i].masked,
            true,
            &[
                ("kind", findings[i].kind.as_str().into()),
                ("fingerprint", findings[i].fingerprint.clone().into()),
            ],
        )?;
        let answers = match revoker.revoke_leaked(&findings[i].value, region) {
            Ok(answers) => answers
                .into_iter()
                .map(|answer| {
                    let mut revocation = Revocation {
                        host: answer.api.as_str().to_owned(),
                        region: answer.region.map(|r| r.as_str().to_owned()),
                        ..Revocation::default()
                    };
                    match answer.result {
                        Ok(report) => {
                            revocation.found = Some(report.found);
                            revocation.kind = report.kind;
                        }
                        Err(e) => revocation.error = Some(e.with_causes()),
                    }
                    revocation
                })
                .collect(),
            Err(e) => vec![Revocation {
                error: Some(e.to_string()),
                ..Revocation::default()
            }],
        };
        for answer in &answers {
            recorder.record(
                "key.revoke_reported",
                &findings[i].masked,
                answer.found == Some(true),
                &[
                    ("host", answer.host.clone().into()),
                    ("found", answer.found.into()),
                    ("type", answer.kind.clone().into()),
                    ("error", answer.error.clone().into()),
                    ("fingerprint", findings[i].fingerprint.clone().into()),
                ],
            )?;
        }
        let fingerprint = findings[i].fingerprint.clone();
        for finding in findings.iter_mut().filter(|f| f.fingerprint == fingerprint) {
            finding.revocations = answers.clone();
        }
    }
    Ok(())
}

/// Asks on the terminal; refuses when there is none to ask on.
fn confirm(count: usize) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("--revoke needs --yes when standard input is not a terminal");
    }
    let mut stderr = std::io::stderr().lock();
    write!(
        stderr,
        "Report {count} live secret{} to PostHog? PostHog rolls or revokes {} at once and emails the owner. [y/N] ",
        if count == 1 { "" } else { "s" },
        if count == 1 { "it" } else { "them" }
    )?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// One line for people about a verification.
pub(super) fn describe(verification: &Verification) -> String {
    let mut text = verification.status.clone();
    if let Some(region) = &verification.region {
        text.push_str(&format!(" in {region}"));
    }
    if let Some(scopes) = &verification.scopes {
        text.push_str(&format!(": scopes {}", scopes.join(" ")));
        match &verification.scoped_projects {
            Some(projects) => {
                let ids: Vec<String> = projects.iter().map(u64::to_string).collect();
                text.push_str(&format!(", projects {}", ids.join(" ")));
            }
            None => text.push_str(", every project"),
        }
    }
    if let Some(owner) = &verification.owner {
        text.push_str(&format!(", owned by {owner}"));
    }
    if let Some(reason) = &verification.reason {
        text.push_str(&format!(" ({reason})"));
    }
    crate::untrusted::escape(&text)
}

/// One line for people about a leak report.
pub(super) fn describe_revocation(revocation: &Revocation) -> String {
    let place = revocation
        .region
        .clone()
        .unwrap_or_else(|| revocation.host.clone());
    let text = match (&revocation.error, revocation.found) {
        (Some(error), _) => format!("revocation in {place} failed: {error}"),
        (None, Some(true)) => format!(
            "revoked in {place}: PostHog rolled the {}",
            revocation
                .kind
                .as_deref()
                .unwrap_or("credential")
                .replace('_', " ")
        ),
        (None, _) => format!("{place} does not know it"),
    };
    crate::untrusted::escape(&text)
}
