//! Revocation data over HTTP, for [`crate::signature::revocation`]: CRLs from distribution
//! points (GET) and OCSP (POST, `application/ocsp-request`, RFC 6960 appendix A). Blocking,
//! because verification runs on blocking threads; short timeouts, because a signature's
//! verdict waits for it, and a source that does not answer yields TRY_LATER.

use std::time::Duration;

use crate::signature::revocation::Fetch;

/// The largest CRL taken (the Polish qualified CAs' CRLs are a few MB).
const MAX_CRL_BYTES: usize = 64 * 1024 * 1024;

pub struct HttpFetch {
    timeout: Duration,
}

thread_local! {
    /// One client per verifying thread, made there on first use and dropped when the thread
    /// ends: a blocking client owns a runtime, which must not be made or dropped on an async
    /// worker, where the configuration lives.
    static CLIENT: std::cell::RefCell<Option<(Duration, reqwest::blocking::Client)>> =
        const { std::cell::RefCell::new(None) };
}

impl HttpFetch {
    pub fn new(timeout: Duration) -> Result<HttpFetch, String> {
        crate::install_crypto_provider();
        Ok(HttpFetch { timeout })
    }

    fn with_client<T>(
        &self,
        call: impl FnOnce(&reqwest::blocking::Client) -> Result<T, String>,
    ) -> Result<T, String> {
        CLIENT.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot
                .as_ref()
                .is_none_or(|(timeout, _)| *timeout != self.timeout)
            {
                let client = reqwest::blocking::Client::builder()
                    .timeout(self.timeout)
                    .connect_timeout(self.timeout)
                    .user_agent(concat!("eurzad/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("HTTP client for revocation data: {e}"))?;
                *slot = Some((self.timeout, client));
            }
            let (_, client) = slot.as_ref().expect("just made");
            call(client)
        })
    }

    fn take(response: reqwest::blocking::Response) -> Result<Vec<u8>, String> {
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        if response
            .content_length()
            .is_some_and(|n| n as usize > MAX_CRL_BYTES)
        {
            return Err("the answer is over 64 MB".into());
        }
        let bytes = response.bytes().map_err(|e| e.to_string())?;
        if bytes.len() > MAX_CRL_BYTES {
            return Err("the answer is over 64 MB".into());
        }
        Ok(bytes.to_vec())
    }
}

impl Fetch for HttpFetch {
    fn crl(&self, url: &str) -> Result<Vec<u8>, String> {
        self.with_client(|client| HttpFetch::take(client.get(url).send().map_err(describe)?))
    }

    fn ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        self.with_client(|client| {
            let response = client
                .post(url)
                .header("Content-Type", "application/ocsp-request")
                .body(request.to_vec())
                .send()
                .map_err(describe)?;
            HttpFetch::take(response)
        })
    }
}

fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "no answer in time".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else {
        error.to_string()
    }
}
