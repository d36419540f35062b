//! The configuration resolved once. [`Config`] is the file as written (serde only);
//! [`Settings::resolve`] reads, parses and checks everything the daemon runs with, each
//! thing once, and each error names its key: the endpoint, the office's keys and ePUAP's
//! certificate, the seal, the trust, the time zone, the schedules, the mailer, the portal's
//! token. `eurzad check` resolves and prints it ([`Settings::summary`]); `eurzad run`
//! resolves it and the daemon consumes it, so the two cannot drift apart. Nothing after
//! this reads a key file, parses a schedule or builds the mailer again.

use chrono::TimeDelta;
use chrono_tz::Tz;

use crate::config::{Config, ConfigError, Endpoint, Part, redact_url};
use crate::notify::Mailer;
use crate::notify::schedule::Schedule;
use crate::registers::Register;
use crate::signature::KindTrust;
use crate::xmldsig::SigningKey;

/// What the daemon runs with.
pub struct Settings {
    /// The file as written, for the plain values (intervals, limits, addresses).
    pub config: Config,
    pub endpoint: Endpoint,
    /// The office system's WS-Security key (the emulator's demo key with `embedded`).
    pub office_key: SigningKey,
    /// ePUAP's certificate, which signs its answers.
    pub server_certificate: Vec<u8>,
    /// The key letters are sealed with.
    pub seal: SigningKey,
    /// The trust for inbound documents, before the daemon compares its trusted list with
    /// the one it used last (that needs the database).
    pub trust: KindTrust,
    /// `notify.timezone`: the office's days, deadlines and schedules.
    pub zone: Tz,
    /// When officials get the daily digest.
    pub digest: Schedule,
    /// How long before a deadline officials are reminded.
    pub reminder_before: TimeDelta,
    /// The registers synced on a schedule.
    pub register_schedules: Vec<(&'static Register, Schedule)>,
    pub mailer: Mailer,
    /// The read API's bearer token, when `portal.listen` is set.
    pub portal_token: Option<String>,
    /// e-Doręczenia, when `[edoreczenia] endpoint` is set.
    pub edoreczenia: Option<crate::edoreczenia::ApiSettings>,
}

impl Settings {
    /// Everything the daemon needs, from `config`; the first error names its key.
    pub fn resolve(config: Config) -> Result<Settings, ConfigError> {
        // The checks of plain values that build nothing.
        config.check(&[Part::Database])?;
        config.check_boxes()?;
        config.check_letter_kinds()?;
        config.check_portal_limits()?;
        config.check_desk()?;
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            file: config.source.clone(),
            key: key.to_string(),
            message,
        };
        let notify = &config.notify;
        let zone: Tz = notify
            .timezone
            .parse()
            .map_err(|e| invalid("notify.timezone", format!("{e}")))?;
        let digest = Schedule::new(&notify.digest_cron, &notify.timezone)
            .map_err(|e| invalid("notify.digest_cron", e.to_string()))?;
        let reminder_before = TimeDelta::from_std(notify.reminder_before)
            .map_err(|_| invalid("notify.reminder_before", "too long".into()))?;
        let register_schedules =
            crate::sync::schedules(&config).map_err(|e| invalid(&e.key, e.message))?;
        Ok(Settings {
            endpoint: config.endpoint()?,
            office_key: config.office_key()?,
            server_certificate: config.server_certificate()?,
            seal: config.seal_key()?,
            trust: config.inbound_trust_after(None)?,
            zone,
            digest,
            reminder_before,
            register_schedules,
            mailer: Mailer::from_config(&config)?,
            portal_token: config.portal_token()?,
            edoreczenia: config.edoreczenia()?,
            config,
        })
    }

    /// What `eurzad check` prints: what the daemon would run with.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let config = &self.config;
        let mut out = String::new();
        let endpoint = match &self.endpoint {
            Endpoint::Embedded => "the embedded emulator".to_string(),
            Endpoint::Url(url) => url.clone(),
        };
        let _ = writeln!(out, "eurzad: {} is sound", config.source);
        let _ = writeln!(out, "  database: {}", redact_url(&config.database.url));
        let boxes: Vec<&str> = config
            .epuap
            .boxes
            .iter()
            .map(|b| b.adres.as_str())
            .collect();
        let _ = writeln!(out, "  ePUAP: {endpoint}; boxes: {}", boxes.join(", "));
        let _ = writeln!(out, "  trust: {}", trust_summary(&self.trust));
        let _ = writeln!(
            out,
            "  replies: {}, {}",
            match config.provisioning.reply_channel {
                crate::config::ReplyChannel::Skrytka => "ePUAP skrytka (nadaj, UPP at once)",
                crate::config::ReplyChannel::Doreczyciel =>
                    "ePUAP doręczyciel (dorecz, UPD on pickup)",
            },
            if config.provisioning.seal_private_key.is_some() {
                "sealed with provisioning.seal_*"
            } else {
                "sealed with the WS-Security key"
            }
        );
        let routes: Vec<String> = crate::config::PROOF_KINDS
            .iter()
            .map(|kind| {
                let routes: Vec<&str> = config
                    .delivery
                    .routes_for(kind)
                    .iter()
                    .map(|r| r.as_str())
                    .collect();
                format!("{kind}: {}", routes.join(" → "))
            })
            .collect();
        let _ = writeln!(
            out,
            "  routes: {}; address database answers kept {}{}",
            routes.join("; "),
            humantime::format_duration(config.delivery.address_cache),
            if self.edoreczenia.is_none() {
                " (e-Doręczenia is off: only epuap can be taken)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "  mail: {} official(s), {}; digest {} ({}), reminders {} h before a deadline",
            config.notify.officials.len(),
            self.mailer.describe(),
            config.notify.digest_cron,
            self.zone,
            self.reminder_before.num_hours()
        );
        let _ = writeln!(
            out,
            "  registers: {} schedule(s){}",
            self.register_schedules.len(),
            if self.register_schedules.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    self.register_schedules
                        .iter()
                        .map(|(r, s)| format!("{} {}", r.name, s.pattern()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        let _ = writeln!(
            out,
            "  portal API: {}",
            config.portal.listen.map_or("off".to_string(), |a| format!(
                "on {a}, {} reads at once ({} while a register file is applied, resting {}× a read's time after it)",
                config.portal.connections.max(1),
                config.portal.connections_during_sync,
                config.portal.rest_during_sync(config.database.is_sqlite())
            ))
        );
        let _ = writeln!(
            out,
            "  e-Doręczenia: {}",
            match &self.edoreczenia {
                None => "off".to_string(),
                Some(api) if api.endpoint == "embedded" => format!(
                    "the embedded emulator, system {}; deemed delivered {} days after D.1{}",
                    api.credentials.client_id(),
                    api.following.deemed.days,
                    if api.following.deemed.moves_off_holidays {
                        " (moved off holidays)"
                    } else {
                        ""
                    },
                ),
                Some(api) => format!(
                    "{}, system {}, token from {}; deemed delivered {} days after D.1{}; evidence seals {}",
                    api.endpoint,
                    api.credentials.client_id(),
                    api.realm,
                    api.following.deemed.days,
                    if api.following.deemed.moves_off_holidays {
                        " (moved off holidays)"
                    } else {
                        ""
                    },
                    if api.operator_certificate.is_some() {
                        "checked against edoreczenia.operator_certificate"
                    } else {
                        "unchecked (no edoreczenia.operator_certificate)"
                    },
                ),
            }
        );
        if config.notify.officials.is_empty() {
            let _ = writeln!(
                out,
                "  warning: notify.officials is empty: no official will be e-mailed about access requests or deadlines"
            );
        }
        out
    }
}

/// The anchors and seals of each kind of signature, in a line.
pub fn trust_summary(trust: &KindTrust) -> String {
    format!(
        "{} qualified anchor(s){}, {} trusted-profile seal(s), {} personal anchor(s)",
        trust.qualified.anchors.len(),
        trust
            .trusted_list
            .as_ref()
            .map(|l| format!(
                " from the {} trusted list no. {}",
                l.territory, l.sequence_number
            ))
            .unwrap_or_default(),
        trust.trusted_profile.pinned.len(),
        trust.personal.anchors.len()
    )
}
