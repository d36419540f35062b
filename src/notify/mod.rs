//! E-mail to officials, in Polish: lettre over SMTP (STARTTLS, implicit TLS, or plain on
//! loopback), or, when no SMTP server is configured (the embedded default), `.eml` files in a
//! folder, which the log names.
//!
//! What is sent is decided elsewhere and recorded first (`notification` rows, each keyed so
//! that it happens once); this module only delivers a message and renders the templates.

pub mod schedule;
pub mod templates;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, ConfigError, SmtpSecurity};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("address {address:?}: {message}")]
    Address { address: String, message: String },
    #[error("building the message: {0}")]
    Message(String),
    #[error("SMTP: {0}")]
    Smtp(String),
    #[error("mail folder: {0}")]
    Folder(String),
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
    Folder {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: std::path::PathBuf,
        from: Mailbox,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { from, .. } => write!(f, "Mailer::Smtp(from {from})"),
            Mailer::Folder { dir, .. } => write!(f, "Mailer::Folder({})", dir.display()),
        }
    }
}

fn mailbox(address: &str) -> Result<Mailbox, NotifyError> {
    address
        .parse()
        .map_err(|e: lettre::address::AddressError| NotifyError::Address {
            address: address.to_string(),
            message: e.to_string(),
        })
}

/// Checks `notify.from` and `notify.officials` as addresses; errors name the key.
pub fn check_addresses(config: &Config) -> Result<(), ConfigError> {
    mailbox(&config.notify.from).map_err(|e| config_error(config, "notify.from", e))?;
    for official in &config.notify.officials {
        mailbox(official).map_err(|e| config_error(config, "notify.officials", e))?;
    }
    Ok(())
}

/// Whether `host` names this machine: plain SMTP (`smtp_security = "none"`) is allowed only
/// there, where nothing but the machine itself can read the password and the mail.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks the SMTP settings as the mailer would use them, touching nothing: plain SMTP only to
/// a loopback host, and the password file readable when a user is set.
pub fn check_smtp(config: &Config) -> Result<(), ConfigError> {
    let notify = &config.notify;
    let Some(host) = &notify.smtp_host else {
        return Ok(());
    };
    if notify.smtp_security == SmtpSecurity::None && !is_loopback_host(host) {
        return Err(config_error(
            config,
            "notify.smtp_security",
            NotifyError::Smtp(format!(
                "\"none\" (plain SMTP) is allowed only to a loopback host, not {host:?}: \
                 use \"starttls\" or \"tls\""
            )),
        ));
    }
    smtp_credentials(config)?;
    Ok(())
}

/// The SMTP login, when `notify.smtp_user` is set: the user and the password read from
/// `notify.smtp_password_file`.
fn smtp_credentials(config: &Config) -> Result<Option<Credentials>, ConfigError> {
    let notify = &config.notify;
    let Some(user) = &notify.smtp_user else {
        return Ok(None);
    };
    let file = notify.smtp_password_file.as_deref().ok_or_else(|| {
        config_error(
            config,
            "notify.smtp_password_file",
            NotifyError::Smtp("required with notify.smtp_user".into()),
        )
    })?;
    let path = config.resolve_path("notify.smtp_password_file", file)?;
    let password = std::fs::read_to_string(&path).map_err(|e| {
        config_error(
            config,
            "notify.smtp_password_file",
            NotifyError::Smtp(format!("cannot read {}: {e}", path.display())),
        )
    })?;
    Ok(Some(Credentials::new(user.clone(), password.trim().into())))
}

impl Mailer {
    /// The mailer `[notify]` describes. Errors name the key.
    pub fn from_config(config: &Config) -> Result<Mailer, ConfigError> {
        let notify = &config.notify;
        let from = mailbox(&notify.from).map_err(|e| config_error(config, "notify.from", e))?;
        for official in &notify.officials {
            mailbox(official).map_err(|e| config_error(config, "notify.officials", e))?;
        }
        let Some(host) = &notify.smtp_host else {
            // The folder is made by [`Mailer::prepare`], when the daemon starts: `eurzad
            // check` builds the mailer too, and touches nothing.
            let dir = config.resolve_path("notify.mail_dir", &notify.mail_dir)?;
            return Ok(Mailer::Folder {
                transport: AsyncFileTransport::new(&dir),
                dir,
                from,
            });
        };
        check_smtp(config)?;
        let smtp_error = |e: lettre::transport::smtp::Error| {
            config_error(config, "notify.smtp_host", NotifyError::Smtp(e.to_string()))
        };
        let mut builder = match notify.smtp_security {
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(smtp_error)?
            }
            SmtpSecurity::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(smtp_error)?
            }
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        };
        if let Some(port) = notify.smtp_port {
            builder = builder.port(port);
        }
        if let Some(credentials) = smtp_credentials(config)? {
            builder = builder.credentials(credentials);
        }
        Ok(Mailer::Smtp {
            transport: builder.build(),
            from,
        })
    }

    /// Makes the mail folder (`notify.mail_dir`) when mail goes to one.
    pub fn prepare(&self) -> Result<(), NotifyError> {
        if let Mailer::Folder { dir, .. } = self {
            std::fs::create_dir_all(dir)
                .map_err(|e| NotifyError::Folder(format!("{}: {e}", dir.display())))?;
        }
        Ok(())
    }

    /// Describes where mail goes, for the log.
    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp { .. } => "SMTP".into(),
            Mailer::Folder { dir, .. } => format!(
                "no SMTP server configured: mail is written to {} (set notify.smtp_host)",
                dir.display()
            ),
        }
    }

    /// Sends one plain-text message (UTF-8) to `to`.
    pub async fn send(&self, to: &[String], subject: &str, body: &str) -> Result<(), NotifyError> {
        let from = match self {
            Mailer::Smtp { from, .. } | Mailer::Folder { from, .. } => from.clone(),
        };
        let mut builder = Message::builder()
            .from(from)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for address in to {
            builder = builder.to(mailbox(address)?);
        }
        let message = builder
            .body(body.to_string())
            .map_err(|e| NotifyError::Message(e.to_string()))?;
        match self {
            Mailer::Smtp { transport, .. } => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| NotifyError::Smtp(e.to_string())),
            Mailer::Folder { transport, .. } => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| NotifyError::Folder(e.to_string())),
        }
    }
}

fn config_error(config: &Config, key: &str, error: NotifyError) -> ConfigError {
    ConfigError::Invalid {
        file: config.source.clone(),
        key: key.into(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn only_this_machine_is_loopback() {
        for host in ["localhost", "127.0.0.1", "127.0.0.53", "::1", "[::1]"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "smtp.urzad.example",
            "10.0.0.25",
            "::2",
            "localhost.example",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
