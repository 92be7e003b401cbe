//! A connection read by substring: just enough XML for a load generator.
use super::session::Session;
use super::*;

/// Bytes buffered while waiting for a reply; more means the server is
/// not answering what we asked.
const MAX_BUFFER: usize = 256 * 1024;

/// A connection and what was read from it but not consumed yet.
pub struct Conn {
    pub io: Session,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(io: Session) -> Self {
        Conn {
            io,
            buf: Vec::new(),
        }
    }

    /// Send one element and flush.
    pub async fn send(&mut self, data: &[u8], deadline: Instant) -> anyhow::Result<()> {
        timeout_at(deadline, self.io.send(data))
            .await
            .map_err(|_| anyhow!("timed out writing"))?
            .context("write")
    }

    /// Read until one of `needles` appears; consume up to the end of the
    /// first one found and return its index with the consumed bytes.
    pub async fn wait_any(
        &mut self,
        needles: &[&str],
        deadline: Instant,
    ) -> anyhow::Result<(usize, Vec<u8>)> {
        loop {
            let hit = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| find(&self.buf, n.as_bytes()).map(|p| (p + n.len(), i)))
                .min();
            if let Some((end, i)) = hit {
                return Ok((i, self.buf.drain(..end).collect()));
            }
            if find(&self.buf, b"<stream:error").is_some()
                || find(&self.buf, self.io.stream_end()).is_some()
            {
                bail!("stream closed by server: {}", self.snippet());
            }
            if self.buf.len() > MAX_BUFFER {
                bail!("no {needles:?} in {} bytes", self.buf.len());
            }
            let mut chunk = [0u8; 2048];
            let n = timeout_at(deadline, self.io.read(&mut chunk))
                .await
                .map_err(|_| anyhow!("timed out waiting for {needles:?}: {}", self.snippet()))?
                .context("read")?;
            if n == 0 {
                bail!(
                    "connection closed waiting for {needles:?}: {}",
                    self.snippet()
                );
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Wait for one needle.
    pub async fn wait(&mut self, needle: &str, deadline: Instant) -> anyhow::Result<Vec<u8>> {
        Ok(self.wait_any(&[needle], deadline).await?.1)
    }

    /// After sending our `</stream:stream>` (or `<close/>`): read (and
    /// discard) until the server closes its stream or the connection.
    /// False if it did not by `deadline`.
    pub async fn wait_closed(&mut self, deadline: Instant) -> bool {
        let end = self.io.stream_end();
        loop {
            if find(&self.buf, end).is_some() {
                return true;
            }
            // Keep only what could be the start of the end tag.
            let keep = self.buf.len().min(end.len() - 1);
            self.buf.drain(..self.buf.len() - keep);
            let mut chunk = [0u8; 2048];
            match timeout_at(deadline, self.io.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The start of what is buffered, for error messages.
    fn snippet(&self) -> String {
        let end = self.buf.len().min(300);
        String::from_utf8_lossy(&self.buf[..end]).into_owned()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}
