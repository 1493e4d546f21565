//! Attachments: opaque encrypted blobs, uploaded in chunks on one connection,
//! stored as files named by their SHA-256 (checked on completion), served only by
//! that address, deleted when they expire. A new upload needs an upload token
//! (`upload_token`), spent by its first chunk.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use rand::RngCore;
use rankfile_proto::v1::{self as pb, server_frame::Body as Out};
use sha2::{Digest, Sha256};
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::error::Result;
use crate::frame::{fixed, Refusal, Reply};
use crate::limits::MAX_ATTACHMENT_CHUNK;
use crate::relay::Relay;
use crate::storage::{Address, AttachmentMeta};

/// Sub-directory of the data directory for blobs (and `tmp/` for uploads).
pub const BLOB_DIR: &str = "attachments";

/// An upload in progress on one connection.
pub struct Upload {
    address: Address,
    total: u64,
    received: u64,
    file: fs::File,
    tmp: PathBuf,
    hasher: Sha256,
    delete_hash: Option<[u8; 32]>,
}

impl Upload {
    /// Deletes the partial file of an abandoned upload.
    pub async fn discard(self) {
        drop(self.file);
        let _ = fs::remove_file(&self.tmp).await;
    }
}

/// Where the blob with `address` lives.
pub fn blob_path(data_dir: &Path, address: &Address) -> PathBuf {
    data_dir.join(BLOB_DIR).join(hex::encode(address))
}

/// Makes the blob directories.
pub fn prepare(data_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(data_dir.join(BLOB_DIR).join("tmp"))?;
    Ok(())
}

fn stored(address: &Address, received: u64, complete: bool, expires_at_ms: u64) -> Out {
    Out::AttachmentStored(pb::AttachmentStored {
        address: address.to_vec(),
        received,
        complete,
        expires_at_ms,
    })
}

/// PutAttachment: one chunk. `current` is the connection's upload in progress.
pub async fn put(
    relay: &Relay,
    current: &mut Option<Box<Upload>>,
    req: pb::PutAttachment,
) -> Reply {
    let address = fixed::<32>(&req.address, "address must be 32 bytes")?;
    let len = req.data.len() as u64;
    if req.offset == 0 {
        if let Some(old) = current.take() {
            old.discard().await;
        }
        if req.total_size == 0 {
            return Err(Refusal::malformed("empty attachment"));
        }
        if req.total_size > relay.config.attachment_max_bytes {
            return Err(Refusal::too_large("attachment too large"));
        }
        // Every new upload spends a token a logged-in device got for it
        // (`upload_token`), so uploads count against byte budgets even though
        // the relay cannot tell who makes them.
        relay.uploads.spend(&req.upload_token, req.total_size)?;
        let delete_hash = match req.delete_key_hash.len() {
            0 => None,
            _ => Some(fixed::<32>(
                &req.delete_key_hash,
                "delete key hash must be 32 bytes",
            )?),
        };
        let now = relay.now_ms();
        if let Some(meta) = relay.store.attachment(address, now).await? {
            if fs::try_exists(blob_path(&relay.config.data_dir, &address))
                .await
                .unwrap_or(false)
            {
                // Already here (content addressing makes it the same bytes).
                return Ok(stored(&address, meta.size, true, meta.expires_at_ms));
            }
        }
        let mut name = [0u8; 16];
        rand::rng().fill_bytes(&mut name);
        let tmp = relay
            .config
            .data_dir
            .join(BLOB_DIR)
            .join("tmp")
            .join(hex::encode(name));
        let file = fs::File::create(&tmp)
            .await
            .map_err(crate::error::Error::from)?;
        *current = Some(Box::new(Upload {
            address,
            total: req.total_size,
            received: 0,
            file,
            tmp,
            hasher: Sha256::new(),
            delete_hash,
        }));
    }
    let Some(up) = current.as_mut() else {
        return Err(Refusal::malformed("chunk without an upload in progress"));
    };
    if up.address != address
        || req.offset != up.received
        || (req.total_size != 0 && req.total_size != up.total)
    {
        return Err(Refusal::malformed("chunk does not continue the upload"));
    }
    if up.received.saturating_add(len) > up.total {
        return Err(Refusal::malformed("chunk goes past the total size"));
    }
    up.file
        .write_all(&req.data)
        .await
        .map_err(crate::error::Error::from)?;
    up.hasher.update(&req.data);
    up.received += len;
    if up.received < up.total {
        return Ok(stored(&address, up.received, false, 0));
    }
    let Some(up) = current.take() else {
        return Err(Refusal::malformed("chunk without an upload in progress"));
    };
    finish(relay, *up).await
}

async fn finish(relay: &Relay, mut up: Upload) -> Reply {
    let digest: [u8; 32] = up.hasher.finalize_reset().into();
    if digest != up.address {
        up.discard().await;
        return Err(Refusal::malformed("content does not match its address"));
    }
    up.file.flush().await.map_err(crate::error::Error::from)?;
    up.file
        .sync_all()
        .await
        .map_err(crate::error::Error::from)?;
    let path = blob_path(&relay.config.data_dir, &up.address);
    fs::rename(&up.tmp, &path)
        .await
        .map_err(crate::error::Error::from)?;
    if let Some(dir) = path.parent() {
        let dir = fs::File::open(dir)
            .await
            .map_err(crate::error::Error::from)?;
        dir.sync_all().await.map_err(crate::error::Error::from)?;
    }
    let expires_at_ms = relay
        .now_ms()
        .saturating_add(relay.config.attachment_ttl_secs.saturating_mul(1000));
    relay
        .store
        .put_attachment(AttachmentMeta {
            address: up.address,
            size: up.total,
            expires_at_ms,
            delete_hash: up.delete_hash,
        })
        .await?;
    Ok(stored(&up.address, up.total, true, expires_at_ms))
}

/// GetAttachment: one chunk of a stored blob.
pub async fn get(relay: &Relay, req: pb::GetAttachment) -> Reply {
    let address = fixed::<32>(&req.address, "address must be 32 bytes")?;
    let Some(meta) = relay.store.attachment(address, relay.now_ms()).await? else {
        return Err(Refusal::not_found("no such attachment"));
    };
    if req.offset > meta.size {
        return Err(Refusal::malformed("offset past the end"));
    }
    let want = if req.max_len == 0 {
        MAX_ATTACHMENT_CHUNK
    } else {
        (req.max_len as usize).min(MAX_ATTACHMENT_CHUNK)
    };
    let len = (meta.size - req.offset).min(want as u64) as usize;
    let mut file = match fs::File::open(blob_path(&relay.config.data_dir, &address)).await {
        Ok(f) => f,
        Err(_) => return Err(Refusal::not_found("no such attachment")),
    };
    file.seek(SeekFrom::Start(req.offset))
        .await
        .map_err(crate::error::Error::from)?;
    let mut data = vec![0u8; len];
    file.read_exact(&mut data)
        .await
        .map_err(crate::error::Error::from)?;
    Ok(Out::AttachmentChunk(pb::AttachmentChunk {
        address: address.to_vec(),
        total_size: meta.size,
        offset: req.offset,
        data,
    }))
}

/// Deletes the files of expired attachments (their metadata is already gone).
pub async fn remove_blobs(data_dir: &Path, addresses: &[Address]) {
    for a in addresses {
        let _ = fs::remove_file(blob_path(data_dir, a)).await;
    }
}
