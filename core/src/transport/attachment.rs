//! Attachment transfers: the blob is encrypted on the device (see
//! [`crate::attachment`]) and moved on a connection of its own that logs in
//! as `Anonymous`, so the relay cannot tie a blob to the account that
//! uploads or downloads it, and a large file never holds up the account's
//! own connection. The relay keeps one upload in progress per connection;
//! with a connection per transfer, transfers never interleave. An upload
//! first gets a single-use upload token on the logged-in connection (the
//! relay charges the bytes to the account's budget there), then presents it
//! on the anonymous one.

use rankfile_proto::v1 as pb;
use sha2::{Digest, Sha256};

use super::client::Client;
use super::link::{self, Link, RelayAddress};
use crate::attachment::{self, AttachmentPointer, DIGEST_LEN};
use crate::error::{Error, Result};
use crate::uploads::new_delete_key;

/// Bytes of a blob sent in one `PutAttachment`: inside the relay's frame limit
/// with room for the frame's other fields.
const UPLOAD_CHUNK: usize = 128 * 1024;
const _: () = assert!(UPLOAD_CHUNK <= rankfile_proto::wire::MAX_ATTACHMENT_CHUNK);

fn unexpected(what: &str) -> Error {
    Error::Transport(format!("unexpected answer to {what}"))
}

/// A fresh anonymous connection to the relay.
async fn anonymous(relay: &RelayAddress) -> Result<Link> {
    let (ws, _) = link::open(relay).await?;
    let (link, _deliveries, _) = link::start(ws, None).await?;
    Ok(link)
}

/// Uploads a blob under its address, in chunks; done when the relay says it
/// is stored (at once if it already holds the same bytes). The first chunk
/// spends `token` and carries the hash of `delete_key`. Answers when the
/// relay will drop it.
async fn upload(
    relay: &RelayAddress,
    address: [u8; DIGEST_LEN],
    blob: &[u8],
    token: Vec<u8>,
    delete_key: &[u8],
) -> Result<u64> {
    let link = anonymous(relay).await?;
    // Spent by the first chunk; the ones after continue that upload.
    let mut token = Some(token);
    let mut delete_key_hash = Some(Sha256::digest(delete_key).to_vec());
    let total = blob.len() as u64;
    let mut offset = 0usize;
    loop {
        let end = (offset + UPLOAD_CHUNK).min(blob.len());
        let reply = link
            .request(pb::client_frame::Body::PutAttachment(pb::PutAttachment {
                address: address.to_vec(),
                total_size: total,
                offset: offset as u64,
                data: blob[offset..end].to_vec(),
                upload_token: token.take().unwrap_or_default(),
                delete_key_hash: delete_key_hash.take().unwrap_or_default(),
            }))
            .await?;
        let pb::server_frame::Body::AttachmentStored(stored) = reply else {
            return Err(unexpected("an attachment upload"));
        };
        if stored.complete {
            return Ok(stored.expires_at_ms);
        }
        if stored.received != end as u64 || end == blob.len() {
            return Err(Error::Transport(
                "the relay did not take the attachment".into(),
            ));
        }
        offset = end;
    }
}

/// Downloads the blob at `address`, which must be `len` bytes long.
async fn download(relay: &RelayAddress, address: [u8; DIGEST_LEN], len: u64) -> Result<Vec<u8>> {
    let link = anonymous(relay).await?;
    let capacity = usize::try_from(len).map_err(|_| Error::InvalidAttachment("too large"))?;
    let mut blob = Vec::with_capacity(capacity);
    while (blob.len() as u64) < len {
        let reply = link
            .request(pb::client_frame::Body::GetAttachment(pb::GetAttachment {
                address: address.to_vec(),
                offset: blob.len() as u64,
                max_len: 0,
            }))
            .await?;
        let pb::server_frame::Body::AttachmentChunk(chunk) = reply else {
            return Err(unexpected("an attachment download"));
        };
        if chunk.total_size != len {
            return Err(Error::InvalidAttachment("blob of the wrong length"));
        }
        if chunk.offset != blob.len() as u64
            || chunk.data.is_empty()
            || blob.len() + chunk.data.len() > capacity
        {
            return Err(Error::Transport(
                "the relay sent a bad attachment chunk".into(),
            ));
        }
        blob.extend_from_slice(&chunk.data);
    }
    Ok(blob)
}

/// Runs CPU-heavy work (encrypting or hashing a large file) off the runtime's threads.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> Result<R> + Send + 'static) -> Result<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Error::Transport("an attachment task stopped".into()))?
}

impl Client {
    /// Encrypts a file under a fresh key and uploads it to the relay's
    /// attachment store. Attach the pointer to a [`crate::Draft`] to send it;
    /// the key stays inside it. Needs the relay to be reachable.
    pub async fn upload_attachment(
        &self,
        data: Vec<u8>,
        content_type: String,
        file_name: String,
    ) -> Result<AttachmentPointer> {
        let (pointer, blob) =
            blocking(move || attachment::encrypt(&data, &content_type, &file_name)).await?;
        let token = self.upload_token(blob.len() as u64).await?;
        let delete_key = new_delete_key();
        let address = pointer.address();
        let expires_at_ms = upload(
            &self.current_relay()?,
            address,
            &blob,
            token,
            &delete_key[..],
        )
        .await?;
        // Remembered so that deleting the account deletes the blob too.
        self.account
            .call(move |a| a.record_upload(address, &delete_key, expires_at_ms))
            .await??;
        Ok(pointer)
    }

    /// Downloads one attachment of a channel message (by local ID and its
    /// place among the message's attachments), checks it against its pointer
    /// and decrypts it.
    pub async fn download_attachment(&self, message_id: i64, position: u32) -> Result<Vec<u8>> {
        let pointer = self
            .account
            .call(move |a| a.attachment_pointer(message_id, position))
            .await??;
        let blob = download(
            &self.current_relay()?,
            pointer.address(),
            pointer.blob_len(),
        )
        .await?;
        blocking(move || attachment::decrypt(&pointer, &blob)).await
    }
}
