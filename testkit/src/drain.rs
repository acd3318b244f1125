//! Reading a child's stdout or stderr into a shared buffer while it runs, so
//! a test can look at the output so far and a full pipe never blocks the
//! child.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};

/// A growing capture of one stream.
pub type Captured = Arc<Mutex<Vec<u8>>>;

/// Copies `reader` into `buf` until end of file or an error.
pub async fn drain<R: AsyncRead + Unpin>(mut reader: R, buf: Captured) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
        }
    }
}

/// The capture so far, as (lossy) text.
pub fn text(buf: &Captured) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}
