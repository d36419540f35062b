//! The kinds of job in the durable queue: the `job.kind` column, the CLI's listings and the
//! worker's dispatch (`jobs::run_step`) all name them through [`JobKind`].

/// A job's kind, stored as its [`JobKind::as_str`] in `job.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Names the form of a document; queued by earlier versions only.
    Classify,
    /// Judges a stored document: its form, its signature, what follows.
    Verify,
    /// Records a document as correspondence; queued by earlier versions only.
    Correspond,
    /// Turns a verified access request into an account.
    Provision,
    /// Sends the reply to an access request.
    Reply,
    /// Sends an e-mail to officials.
    Mail,
    /// Takes in a UPD, ePUAP's proof that a reply was delivered.
    Receipt,
}

impl JobKind {
    pub const ALL: [JobKind; 7] = [
        JobKind::Classify,
        JobKind::Verify,
        JobKind::Correspond,
        JobKind::Provision,
        JobKind::Reply,
        JobKind::Mail,
        JobKind::Receipt,
    ];

    /// The name in `job.kind`.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobKind::Classify => "classify",
            JobKind::Verify => "verify",
            JobKind::Correspond => "correspond",
            JobKind::Provision => "provision",
            JobKind::Reply => "reply",
            JobKind::Mail => "mail",
            JobKind::Receipt => "receipt",
        }
    }
}

crate::named_states!(JobKind);

#[cfg(test)]
mod tests {
    use super::*;

    use crate::states::Named;

    #[test]
    fn each_kind_reads_back_from_its_name_and_serde_agrees() {
        crate::states::assert_names_read_back::<JobKind>("sweep");
        assert_eq!(JobKind::parse("Verify"), None);
    }
}
