//! One provisioning job as the station hands it to the provisioning side: the request, the
//! report, the error, the [`JobRunner`] trait that runs it, and the checks a job must pass
//! before it gets there.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use keystation_cards::CardSelection;

/// Longest first name, last name or e-mail address a job may carry, in bytes. defguard
/// itself limits these fields far below this; anything longer is not a person's name.
pub const MAX_FIELD_LEN: usize = 256;

/// A provisioning job from defguard (`GetJobResponse`), already checked by
/// [`validate`]: names and address are non-empty, at most [`MAX_FIELD_LEN`] bytes, free of
/// control characters and of `<`/`>`, and the address is a plain `local@domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobRequest {
    /// defguard's job id, echoed in `JobStatus.job_id`.
    pub job_id: u32,
    /// The user's first name.
    pub first_name: String,
    /// The user's last name.
    pub last_name: String,
    /// The user's e-mail address.
    pub email: String,
    /// The card the job is for and how long to look for it (from the station's
    /// configuration: the card choice, `reader`, `card_serial`, `smartcard_retries` looks
    /// `smartcard_retry_interval` apart — defguard's `YUBIKEY_RETRIES` and
    /// `YUBIKEY_RETRY_INTERVAL`).
    pub card: CardSelection,
}

impl JobRequest {
    /// A job with the given fields. [`validate`] it before provisioning.
    pub fn new(
        job_id: u32,
        first_name: impl Into<String>,
        last_name: impl Into<String>,
        email: impl Into<String>,
        card: CardSelection,
    ) -> Self {
        Self {
            job_id,
            first_name: first_name.into(),
            last_name: last_name.into(),
            email: email.into(),
            card,
        }
    }

    /// The OpenPGP user ID for the certificate, `First Last <email>` (RFC 4880 §5.11: by
    /// convention an RFC 2822 name-addr).
    pub fn user_id(&self) -> String {
        format!("{} {} <{}>", self.first_name, self.last_name, self.email)
    }
}

/// What a successful job reports to defguard (`JobStatus` with `success = true`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct JobReport {
    /// The OpenPGP certificate, ASCII-armored (RFC 4880 §6.2).
    pub public_key: String,
    /// The authentication key as an OpenSSH public key line (`ssh-ed25519 AAAA… comment`).
    pub ssh_key: String,
    /// The card's serial number as defguard shows it (`JobStatus.yubikey_serial` is a
    /// string): decimal for a YubiKey.
    pub serial: String,
    /// What the job did with the card's PINs, in words for the station's log (never a PIN;
    /// defguard's protocol has no field for it).
    pub pins: Option<&'static str>,
}

impl JobReport {
    /// A report with the given certificate, SSH key and serial.
    pub fn new(
        public_key: impl Into<String>,
        ssh_key: impl Into<String>,
        serial: impl Into<String>,
    ) -> Self {
        Self {
            public_key: public_key.into(),
            ssh_key: ssh_key.into(),
            serial: serial.into(),
            pins: None,
        }
    }

    /// The report, saying what the job did with the PINs (e.g. [`PinPolicy::describe`]).
    ///
    pub fn with_pins(mut self, pins: &'static str) -> Self {
        self.pins = Some(pins);
        self
    }
}

/// Why a job failed, in words for the person in front of defguard's UI (it becomes
/// `JobStatus.error`). Never put a secret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    message: String,
}

impl JobError {
    /// A failure with a user-facing `message` ("no card detected").
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }

    /// The message sent to defguard.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JobError {}

/// Tells a running job that the station is shutting down. The job should stop at the next
/// safe point (not in the middle of writing a key to the card) and return an error; the
/// station then reports "aborted by station shutdown". Cheap to clone; all clones share
/// one flag.
#[derive(Debug, Clone, Default)]
pub struct AbortSignal {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl AbortSignal {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the signal and wakes every [`wait`](Self::wait)er.
    pub fn abort(&self) {
        let (flag, wakeup) = &*self.inner;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wakeup.notify_all();
    }

    /// Whether the signal has fired.
    pub fn is_aborted(&self) -> bool {
        *self.inner.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `duration` (e.g. between looks for a card) unless the signal fires first.
    /// Returns `true` if it fired.
    pub fn wait(&self, duration: Duration) -> bool {
        let (flag, wakeup) = &*self.inner;
        let deadline = Instant::now() + duration;
        let mut aborted = flag.lock().unwrap_or_else(PoisonError::into_inner);
        while !*aborted {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            aborted = wakeup
                .wait_timeout(aborted, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *aborted
    }
}

/// The provisioning side of the station: puts an identity on a card for one job.
///
/// It is blocking (cards are blocking devices) and runs on its own thread, one job at a
/// time. The station has already checked the job's fields ([`validate`]). Check `abort`
/// between steps and during waits ([`AbortSignal::wait`]). Where panics unwind (test
/// builds) a panic is reported as a failed job; the release build aborts on a panic, and
/// the restarted station runs the job again, at most three times in all (the station's
/// journal, see the crate documentation).
pub trait JobRunner: Send + Sync + 'static {
    /// Runs `job` and returns what to report to defguard.
    fn run_job(&self, job: &JobRequest, abort: &AbortSignal) -> Result<JobReport, JobError>;
}

/// The [`JobRunner`] of a keystation built without a provisioning backend: every job fails
/// with a message saying so.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefuseJobs;

impl JobRunner for RefuseJobs {
    fn run_job(&self, _job: &JobRequest, _abort: &AbortSignal) -> Result<JobReport, JobError> {
        Err(JobError::new("this keystation station has no provisioning backend configured"))
    }
}

/// Checks a job's fields before anything touches a card. The error says which field is
/// wrong and why, for defguard's UI; it quotes no field's value beyond its length.
pub fn validate(job: &JobRequest) -> Result<(), JobError> {
    name("first name", &job.first_name)?;
    name("last name", &job.last_name)?;
    email(&job.email)
}

fn field(what: &str, value: &str) -> Result<(), JobError> {
    if value.is_empty() {
        return Err(JobError::new(format!("invalid job: the {what} is empty")));
    }
    if value.len() > MAX_FIELD_LEN {
        return Err(JobError::new(format!(
            "invalid job: the {what} is {} bytes long (at most {MAX_FIELD_LEN})",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(JobError::new(format!("invalid job: the {what} contains control characters")));
    }
    if value.contains(['<', '>']) {
        // They would end or forge the `<address>` part of the OpenPGP user ID.
        return Err(JobError::new(format!("invalid job: the {what} contains '<' or '>'")));
    }
    Ok(())
}

fn name(what: &str, value: &str) -> Result<(), JobError> {
    field(what, value)?;
    if value.trim().is_empty() {
        return Err(JobError::new(format!("invalid job: the {what} is blank")));
    }
    Ok(())
}

/// A plain RFC 5322 §3.4.1 addr-spec: `local@domain`, one `@`, both parts non-empty, no
/// white space or control characters (no quoted local parts or comments).
fn email(value: &str) -> Result<(), JobError> {
    field("e-mail address", value)?;
    let bad = |why: &str| {
        Err(JobError::new(format!("invalid job: the e-mail address is not valid ({why})")))
    };
    if value.chars().any(char::is_whitespace) {
        return bad("it contains white space");
    }
    let mut parts = value.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return bad("it needs exactly one '@'");
    };
    if local.is_empty() {
        return bad("nothing before the '@'");
    }
    if domain.is_empty() {
        return bad("nothing after the '@'");
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return bad("the domain has an empty label");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(first: &str, last: &str, email: &str) -> JobRequest {
        JobRequest::new(7, first, last, email, CardSelection::default())
    }

    fn error(first: &str, last: &str, email: &str) -> String {
        validate(&job(first, last, email)).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn good_jobs_pass() {
        for (first, last, mail) in [
            ("Ada", "Lovelace", "ada@example.com"),
            ("Zoë", "Ñúñez-O'Brien", "zoe.n+keys@sub.example.org"),
            ("李", "小龍", "li@例え.jp"),
            ("A", "B", "a@b"),
        ] {
            assert_eq!(validate(&job(first, last, mail)), Ok(()), "{first} {last} {mail}");
        }
        let long = "x".repeat(MAX_FIELD_LEN);
        assert_eq!(validate(&job(&long, "B", "a@b")), Ok(()));
    }

    #[test]
    fn bad_names_fail_with_the_field_named() {
        assert_eq!(error("", "B", "a@b"), "invalid job: the first name is empty");
        assert_eq!(error("A", " ", "a@b"), "invalid job: the last name is blank");
        assert_eq!(
            error(&"x".repeat(MAX_FIELD_LEN + 1), "B", "a@b"),
            "invalid job: the first name is 257 bytes long (at most 256)"
        );
        assert_eq!(
            error("A\n", "B", "a@b"),
            "invalid job: the first name contains control characters"
        );
        assert_eq!(
            error("A", "B\u{7f}", "a@b"),
            "invalid job: the last name contains control characters"
        );
        assert_eq!(
            error("A", "B <evil@x>", "a@b"),
            "invalid job: the last name contains '<' or '>'"
        );
    }

    #[test]
    fn bad_addresses_fail() {
        for (mail, why) in [
            ("", "invalid job: the e-mail address is empty"),
            ("ada", "invalid job: the e-mail address is not valid (it needs exactly one '@')"),
            ("a@b@c", "invalid job: the e-mail address is not valid (it needs exactly one '@')"),
            ("@b", "invalid job: the e-mail address is not valid (nothing before the '@')"),
            ("a@", "invalid job: the e-mail address is not valid (nothing after the '@')"),
            ("a b@c", "invalid job: the e-mail address is not valid (it contains white space)"),
            (
                "a@b..c",
                "invalid job: the e-mail address is not valid (the domain has an empty label)",
            ),
            ("a@b\u{0}", "invalid job: the e-mail address contains control characters"),
            ("<a@b>", "invalid job: the e-mail address contains '<' or '>'"),
        ] {
            assert_eq!(error("A", "B", mail), why, "{mail:?}");
        }
    }

    #[test]
    fn user_id_is_name_addr() {
        assert_eq!(
            job("Ada", "Lovelace", "ada@example.com").user_id(),
            "Ada Lovelace <ada@example.com>"
        );
    }

    #[test]
    fn abort_wakes_a_waiter() {
        let signal = AbortSignal::new();
        assert!(!signal.wait(Duration::from_millis(1)));
        let waiter = {
            let signal = signal.clone();
            std::thread::spawn(move || signal.wait(Duration::from_secs(60)))
        };
        signal.abort();
        assert!(waiter.join().unwrap_or(false));
        assert!(signal.is_aborted());
        assert!(signal.wait(Duration::from_secs(60)), "returns at once once fired");
    }
}
