//! The outcomes of a JWT check, with Envoy's (jwt_verify_lib's) messages, which are the
//! body of the 401/403 reply, and the `%RESPONSE_CODE_DETAILS%` made from them.

/// Why a token (or a requirement) failed; `Ok` is success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    JwtMissed,
    JwtNotYetValid,
    JwtExpired,
    JwtBadFormat,
    JwtHeaderBadBase64,
    JwtHeaderBadJson,
    JwtHeaderBadAlg,
    JwtHeaderNotImplementedAlg,
    JwtHeaderBadKid,
    JwtPayloadBadBase64,
    JwtPayloadBadJson,
    JwtIssNotString,
    JwtSubNotString,
    JwtIatNotInteger,
    JwtNbfNotInteger,
    JwtExpNotInteger,
    JwtIatOutOfRange,
    JwtNbfOutOfRange,
    JwtExpOutOfRange,
    JwtJtiNotString,
    JwtAudNotString,
    JwtSignatureBadBase64,
    JwtEd25519SignatureWrongLength,
    JwtUnknownIssuer,
    JwtAudienceNotAllowed,
    JwtVerificationFail,
    JwksNoValidKeys,
    JwksKidAlgMismatch,
    JwksFetchFail,
}

impl Status {
    /// The message (jwt_verify_lib's `getStatusString`): the reply body.
    pub fn message(self) -> &'static str {
        self.texts().0
    }

    /// `jwt_authn_access_denied{<message, spaces as '_'>}`, as Envoy's `generateRcDetails`.
    pub fn details(self) -> &'static str {
        self.texts().1
    }

    /// 403 for audiences, 401 for everything else (as Envoy's filter).
    pub fn http_status(self) -> u16 {
        if self == Status::JwtAudienceNotAllowed {
            403
        } else {
            401
        }
    }

    fn texts(self) -> (&'static str, &'static str) {
        macro_rules! t {
            ($msg:literal, $details:literal) => {
                ($msg, concat!("jwt_authn_access_denied{", $details, "}"))
            };
        }
        use Status::*;
        match self {
            Ok => ("OK", ""),
            JwtMissed => t!("Jwt is missing", "Jwt_is_missing"),
            JwtNotYetValid => t!("Jwt not yet valid", "Jwt_not_yet_valid"),
            JwtExpired => t!("Jwt is expired", "Jwt_is_expired"),
            JwtBadFormat => t!(
                "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
                "Jwt_is_not_in_the_form_of_Header.Payload.Signature_with_two_dots_and_3_sections"
            ),
            JwtHeaderBadBase64 => t!(
                "Jwt header is an invalid Base64url encoded",
                "Jwt_header_is_an_invalid_Base64url_encoded"
            ),
            JwtHeaderBadJson => t!(
                "Jwt header is an invalid JSON",
                "Jwt_header_is_an_invalid_JSON"
            ),
            JwtHeaderBadAlg => t!(
                "Jwt header [alg] field is required and must be a string",
                "Jwt_header_[alg]_field_is_required_and_must_be_a_string"
            ),
            JwtHeaderNotImplementedAlg => t!(
                "Jwt header [alg] is not supported",
                "Jwt_header_[alg]_is_not_supported"
            ),
            JwtHeaderBadKid => t!(
                "Jwt header [kid] field is not a string",
                "Jwt_header_[kid]_field_is_not_a_string"
            ),
            JwtPayloadBadBase64 => t!(
                "Jwt payload is an invalid Base64url encoded",
                "Jwt_payload_is_an_invalid_Base64url_encoded"
            ),
            JwtPayloadBadJson => t!(
                "Jwt payload is an invalid JSON",
                "Jwt_payload_is_an_invalid_JSON"
            ),
            JwtIssNotString => t!(
                "Jwt payload [iss] field is not a string",
                "Jwt_payload_[iss]_field_is_not_a_string"
            ),
            JwtSubNotString => t!(
                "Jwt payload [sub] field is not a string",
                "Jwt_payload_[sub]_field_is_not_a_string"
            ),
            JwtIatNotInteger => t!(
                "Jwt payload [iat] field is not an integer",
                "Jwt_payload_[iat]_field_is_not_an_integer"
            ),
            JwtNbfNotInteger => t!(
                "Jwt payload [nbf] field is not an integer",
                "Jwt_payload_[nbf]_field_is_not_an_integer"
            ),
            JwtExpNotInteger => t!(
                "Jwt payload [exp] field is not an integer",
                "Jwt_payload_[exp]_field_is_not_an_integer"
            ),
            JwtIatOutOfRange => t!(
                "Jwt payload [iat] field is not a positive 64 bit integer",
                "Jwt_payload_[iat]_field_is_not_a_positive_64_bit_integer"
            ),
            JwtNbfOutOfRange => t!(
                "Jwt payload [nbf] field is not a positive 64 bit integer",
                "Jwt_payload_[nbf]_field_is_not_a_positive_64_bit_integer"
            ),
            JwtExpOutOfRange => t!(
                "Jwt payload [exp] field is not a positive 64 bit integer",
                "Jwt_payload_[exp]_field_is_not_a_positive_64_bit_integer"
            ),
            JwtJtiNotString => t!(
                "Jwt payload [jti] field is not a string",
                "Jwt_payload_[jti]_field_is_not_a_string"
            ),
            JwtAudNotString => t!(
                "Jwt payload [aud] field is not a string or string list",
                "Jwt_payload_[aud]_field_is_not_a_string_or_string_list"
            ),
            JwtSignatureBadBase64 => t!(
                "Jwt signature is an invalid Base64url encoded",
                "Jwt_signature_is_an_invalid_Base64url_encoded"
            ),
            JwtEd25519SignatureWrongLength => t!(
                "Jwt ED25519 signature is wrong length",
                "Jwt_ED25519_signature_is_wrong_length"
            ),
            JwtUnknownIssuer => t!(
                "Jwt issuer is not configured",
                "Jwt_issuer_is_not_configured"
            ),
            JwtAudienceNotAllowed => t!(
                "Audiences in Jwt are not allowed",
                "Audiences_in_Jwt_are_not_allowed"
            ),
            JwtVerificationFail => t!("Jwt verification fails", "Jwt_verification_fails"),
            JwksNoValidKeys => t!(
                "Jwks doesn't have any valid public key",
                "Jwks_doesn't_have_any_valid_public_key"
            ),
            JwksKidAlgMismatch => t!(
                "Jwks doesn't have key to match kid or alg from Jwt",
                "Jwks_doesn't_have_key_to_match_kid_or_alg_from_Jwt"
            ),
            JwksFetchFail => t!("Jwks remote fetch is failed", "Jwks_remote_fetch_is_failed"),
        }
    }
}
