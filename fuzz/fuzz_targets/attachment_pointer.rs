//! Fuzz target: an attachment pointer (`AttachmentPointer`) as a channel post
//! carries it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pointer) = rankfile_core::fuzzing::attachment_pointer(data) {
        // What a valid pointer promises the code that downloads it.
        assert!(pointer.size() <= rankfile_core::MAX_ATTACHMENT_LEN);
        assert!(pointer.content_type().len() <= rankfile_core::MAX_CONTENT_TYPE_LEN);
        assert!(pointer.file_name().len() <= rankfile_core::MAX_FILE_NAME_LEN);
    }
});
