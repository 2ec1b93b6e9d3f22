//! Avatars: pictures users upload, checked by their content (PNG, JPEG,
//! GIF or WebP; what the bytes are, not what the upload says), at most
//! GitLab's 200 KiB, kept in the database (instances are stateless) and
//! served back unchanged.

/// GitLab's limit on an avatar's size.
pub const MAX_AVATAR_BYTES: usize = 200 * 1024;

/// An image as uploaded, once its kind is known.
#[derive(Clone, PartialEq, Eq)]
pub struct Avatar {
    pub kind: ImageKind,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Avatar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Avatar({:?}, {} bytes)", self.kind, self.bytes.len())
    }
}

/// The raster formats accepted (never SVG: a script could ride in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    Gif,
    Webp,
}

impl ImageKind {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }

    /// The file name it is served under.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Png => "avatar.png",
            Self::Jpeg => "avatar.jpg",
            Self::Gif => "avatar.gif",
            Self::Webp => "avatar.webp",
        }
    }

    pub fn from_content_type(s: &str) -> Option<Self> {
        [Self::Png, Self::Jpeg, Self::Gif, Self::Webp]
            .into_iter()
            .find(|k| k.content_type() == s)
    }

    /// What `bytes` are, by their signature.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }
}

impl Avatar {
    /// The bytes as stored (base64 text, which every backend keeps alike).
    pub fn to_stored(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&self.bytes)
    }

    /// Stored bytes read back.
    pub fn from_stored(stored: &str) -> Option<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(stored)
            .ok()
    }

    /// An upload checked: an accepted image of at most [`MAX_AVATAR_BYTES`].
    /// The error is GitLab's wording, for `{"message":{"avatar":[…]}}`.
    pub fn check(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() > MAX_AVATAR_BYTES {
            return Err("is too big (should be at most 200 KiB)".to_owned());
        }
        match ImageKind::sniff(&bytes) {
            Some(kind) => Ok(Self { kind, bytes }),
            None => Err(
                "file format is not supported. Please try one of the following supported formats: png, jpg, jpeg, gif, webp"
                    .to_owned(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_bytes() {
        let png = b"\x89PNG\r\n\x1a\n rest".to_vec();
        assert_eq!(Avatar::check(png).unwrap().kind, ImageKind::Png);
        assert_eq!(
            Avatar::check(vec![0xFF, 0xD8, 0xFF, 0xE0]).unwrap().kind,
            ImageKind::Jpeg
        );
        assert_eq!(
            Avatar::check(b"GIF89a..".to_vec()).unwrap().kind,
            ImageKind::Gif
        );
        assert_eq!(
            Avatar::check(b"RIFF\0\0\0\0WEBPVP8 ".to_vec())
                .unwrap()
                .kind,
            ImageKind::Webp
        );
        assert!(Avatar::check(b"<svg onload=alert(1)>".to_vec()).is_err());
        assert!(Avatar::check(b"not an image".to_vec()).is_err());
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(MAX_AVATAR_BYTES + 1, 0);
        assert!(Avatar::check(big).is_err());
        for k in [
            ImageKind::Png,
            ImageKind::Jpeg,
            ImageKind::Gif,
            ImageKind::Webp,
        ] {
            assert_eq!(ImageKind::from_content_type(k.content_type()), Some(k));
        }
    }
}
