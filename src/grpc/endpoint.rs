//! Where a client connects: one address form for every client command. `serve` prints its gRPC
//! address as `127.0.0.1:50051`, so a bare `HOST:PORT` is accepted as well as a URL
//! (`http://127.0.0.1:50051`); the bare form means plaintext HTTP/2, as the server speaks.

use tonic::transport::Endpoint;

/// An address a client cannot use.
#[derive(Debug, thiserror::Error)]
#[error("`{addr}` is not a gRPC address: give HOST:PORT (as `serve` prints it) or a URL such as http://HOST:PORT")]
pub struct AddressError {
    /// The address as given.
    pub addr: String,
    /// Why the URL was refused.
    #[source]
    pub source: Option<tonic::transport::Error>,
}

/// The endpoint for `addr`: `HOST:PORT` (`127.0.0.1:50051`, `[::1]:50051`, `localhost:50051`)
/// or a URL with a scheme (`http://127.0.0.1:50051`).
pub fn endpoint(addr: &str) -> Result<Endpoint, AddressError> {
    let trimmed = addr.trim();
    let refused = |source| AddressError {
        addr: addr.to_string(),
        source,
    };
    if trimmed.is_empty() {
        return Err(refused(None));
    }
    let url = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    let endpoint = Endpoint::from_shared(url).map_err(|e| refused(Some(e)))?;
    // A URL must name the port or the host at least; `http://` alone parses but goes nowhere.
    if endpoint.uri().host().is_none_or(str::is_empty) {
        return Err(refused(None));
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn host_port_as_serve_prints_it_is_plain_http() {
        for (given, uri) in [
            ("127.0.0.1:50051", "http://127.0.0.1:50051/"),
            ("[::1]:50051", "http://[::1]:50051/"),
            ("localhost:50051", "http://localhost:50051/"),
            (" 127.0.0.1:50051 ", "http://127.0.0.1:50051/"),
        ] {
            let e = endpoint(given).unwrap_or_else(|e| panic!("{given}: {e}"));
            assert_eq!(e.uri().to_string(), uri, "{given}");
        }
    }

    #[test]
    fn urls_are_taken_as_they_are() {
        for given in ["http://127.0.0.1:50051", "https://filter.example:443"] {
            let e = endpoint(given).unwrap_or_else(|e| panic!("{given}: {e}"));
            assert_eq!(e.uri().to_string().trim_end_matches('/'), given);
        }
    }

    #[test]
    fn what_is_no_address_says_which_forms_are() {
        for given in ["", "  ", "http://", "not an address"] {
            let e = endpoint(given).expect_err(given);
            assert!(e.to_string().contains("HOST:PORT"), "{given}: {e}");
        }
    }
}
