//! Following a server's world clock (remote mode): the device asks the server what time
//! it is, and waits on it for the moment it next has work, so a server that jumps a
//! day ahead finds its devices checking in at each due moment in between.

use chrono::{DateTime, Utc};

use crate::error::AgentError;
use crate::http;

/// `https://host:port` of a URL.
pub fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Waited, AgentError> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| http::classify(url, e))?;
    if !response.status().is_success() {
        return Err(AgentError::Protocol(format!(
            "{url} answered HTTP {}",
            response.status()
        )));
    }
    let body: serde_json::Value = response.json().await.map_err(|e| http::classify(url, e))?;
    let now = body["now"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| AgentError::Protocol(format!("{url}: no world time in the answer")))?;
    let pushes = body["pushes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    Ok(Waited { now, pushes })
}

/// The server's world time.
pub async fn now(client: &reqwest::Client, server: &str) -> Result<DateTime<Utc>, AgentError> {
    Ok(get(client, &format!("{}/testbed/clock", origin(server)))
        .await?
        .now)
}

/// What a long poll of the clock answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waited {
    /// World time when it answered.
    pub now: DateTime<Utc>,
    /// The pushes that ended it (`syncDevice`, `rebootNow`), if any.
    pub pushes: Vec<String>,
}

/// Waits (one long poll of the server) until world time reaches `until` (`None`: until
/// the server moves on) or a push comes for this device; returns the world time when it
/// answers, which may be earlier if the poll ended first, and the pushes.
pub async fn wait(
    client: &reqwest::Client,
    server: &str,
    follower: &str,
    until: Option<DateTime<Utc>>,
) -> Result<Waited, AgentError> {
    let mut url = format!("{}/testbed/clock?follower={follower}", origin(server));
    // "As soon as possible" is a moment long past; any past moment answers at once.
    let floor = DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default();
    if let Some(t) = until.map(|t| t.max(floor)) {
        url.push_str(&format!(
            "&until={}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .replace('+', "%2B")
        ));
    }
    get(client, &url).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://localhost:8443/ManagementServer/MDM.svc"),
            "https://localhost:8443"
        );
        assert_eq!(origin("https://mdm.contoso.com"), "https://mdm.contoso.com");
    }
}
