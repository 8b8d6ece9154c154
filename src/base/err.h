/*
 * One error space for kortvagt.
 *
 * Every function that can fail returns 0 on success or a negative KV_ERR_*
 * code. Codes are banded by layer so that the band alone tells where a
 * failure came from. A negative verification result (wrong PIN, bad CVV) is
 * not an error: functions report it through an out-parameter.
 *
 * Foreign error spaces (SCARD_*, CK_RV, SW1SW2, SQLite, libpq) are translated
 * at the boundary, in the module that calls them.
 */
#ifndef KV_BASE_ERR_H
#define KV_BASE_ERR_H

#include <stddef.h>

enum kv_err {
    KV_OK = 0,

    /* general: -1 .. -99 */
    KV_ERR_INTERNAL = -1,
    KV_ERR_NOMEM = -2,
    KV_ERR_ARG = -3,       /* bad argument from the caller or the user */
    KV_ERR_IO = -4,        /* file or socket I/O */
    KV_ERR_BUFFER = -5,    /* output buffer too small */
    KV_ERR_FORMAT = -6,    /* malformed input text (hex, JSON, number) */
    KV_ERR_NOT_FOUND = -7, /* a named thing does not exist */
    KV_ERR_UNSUPPORTED = -8,
    KV_ERR_TIMEOUT = -9,
    KV_ERR_INTERRUPTED = -10,
    KV_ERR_CONFIG = -11,
    KV_ERR_JSON = -12, /* JSON does not follow its contract */

    /* apdu / byte parsing: -100 .. -199 */
    KV_ERR_TRUNCATED = -100,       /* fewer bytes than a header or length says */
    KV_ERR_TLV_TAG = -101,         /* tag longer than 3 bytes or malformed */
    KV_ERR_TLV_LENGTH = -102,      /* length field longer than 4 bytes or malformed */
    KV_ERR_TLV_INDEFINITE = -103,  /* indefinite length (0x80) */
    KV_ERR_TLV_OVERLONG = -104,    /* length runs past the enclosing object */
    KV_ERR_TLV_DEPTH = -105,       /* constructed nesting too deep */
    KV_ERR_APDU = -106,            /* malformed C-APDU or R-APDU */
    KV_ERR_DOL = -107,             /* malformed data object list */
    KV_ERR_TRACE = -108,           /* malformed trace line */
    KV_ERR_REPLAY_MISMATCH = -109, /* replay: command differs from the script */
    KV_ERR_REPLAY_END = -110,      /* replay: script exhausted */
    KV_ERR_VPCD_FRAME = -111,      /* malformed vpcd frame */

    /* reader / PC/SC: -200 .. -299 */
    KV_ERR_PCSC_NO_SERVICE = -200, /* pcscd not running */
    KV_ERR_PCSC_NO_READER = -201,  /* no reader / named reader absent */
    KV_ERR_PCSC_NO_CARD = -202,
    KV_ERR_PCSC_REMOVED = -203, /* card removed during the exchange */
    KV_ERR_PCSC_RESET = -204,   /* card was reset by another application */
    KV_ERR_PCSC_UNRESPONSIVE = -205,
    KV_ERR_PCSC_SHARING = -206,
    KV_ERR_PCSC = -207, /* any other SCARD_* failure */

    /* card status / EMV protocol: -300 .. -399 */
    KV_ERR_CARD_SW = -300,        /* unexpected status word */
    KV_ERR_NO_APPLICATION = -301, /* selection found no supported application */
    KV_ERR_CARD_DATA = -302,      /* mandatory card data missing or malformed */
    KV_ERR_PIN_BLOCKED = -303,
    KV_ERR_CONDITIONS = -304, /* 6985 conditions of use not satisfied */
    KV_ERR_ODA = -305,
    /* status words of apdu/apdu.h kv_sw_to_err */
    KV_ERR_CARD_NOT_FOUND = -320, /* 6A82 file or application not found */
    KV_ERR_CARD_RECORD = -321,    /* 6A83 record not found */
    KV_ERR_CARD_NO_DATA = -322,   /* 6A88 referenced data not found */
    KV_ERR_CARD_SECURITY = -323,  /* 6982 security status not satisfied */
    KV_ERR_CARD_VERIFY = -324,    /* 63Cx / 6300 verification failed */
    KV_ERR_CARD_LENGTH = -325,    /* 6700 / 6Cxx wrong length */
    KV_ERR_CARD_PARAM = -326,     /* 6A80 6A86 6B00 wrong data or P1 P2 */
    KV_ERR_CARD_INS = -327,       /* 6D00 6E00 instruction or class not supported */
    KV_ERR_CARD_BLOCKED = -328,   /* 6283 / 6A81 application or card blocked */
    /* offline data authentication and CVM processing (apdu/oda.h, apdu/capk.h, apdu/cvm.h) */
    KV_ERR_ODA_CA_UNKNOWN = -340, /* no CA public key for this RID and index */
    KV_ERR_ODA_CERT_LENGTH =
        -341,                    /* certificate or signature length differs from the key modulus */
    KV_ERR_ODA_HEADER = -342,    /* recovered data header not 6A or trailer not BC */
    KV_ERR_ODA_FORMAT = -343,    /* recovered data format byte wrong for this certificate */
    KV_ERR_ODA_HASH = -344,      /* hash result does not match */
    KV_ERR_ODA_EXPIRED = -345,   /* certificate expired or its date is invalid */
    KV_ERR_ODA_PAN = -346,       /* issuer identifier or certificate PAN does not match the PAN */
    KV_ERR_ODA_ALGORITHM = -347, /* unknown hash or public key algorithm indicator */
    KV_ERR_ODA_DATA_MISSING = -348, /* data needed for the authentication is absent */
    KV_ERR_ODA_KEY_LENGTH = -349,   /* key, exponent or remainder length inconsistent */
    KV_ERR_ODA_MISMATCH = -350,     /* signed dynamic data disagrees with the response (CID) */
    KV_ERR_ODA_RECORD = -351,       /* static data malformed: record not a 70 template, or 9F4A */
    KV_ERR_CAPK_CHECKSUM = -352,    /* CA public key checksum mismatch in the key file */
    KV_ERR_CVM_LIST = -353,         /* malformed CVM list (8E) */
    KV_ERR_CAPK_REVOKED = -354,     /* the issuer certificate is on the CA revocation list */
    KV_ERR_APP_CONFIRM = -355,      /* the application asks for cardholder confirmation */
    KV_ERR_CARD_MISSING = -356,     /* mandatory data object missing (5A, 5F24, 8C, 8D) */
    KV_ERR_CARD_DUPLICATE = -357,   /* a data object appears twice in the card's records */

    /* HSM / PKCS#11: -400 .. -499 */
    KV_ERR_HSM = -400,
    KV_ERR_HSM_MODULE = -401,    /* module cannot be loaded */
    KV_ERR_HSM_TOKEN = -402,     /* token not found */
    KV_ERR_HSM_LOGIN = -403,     /* wrong or missing PIN */
    KV_ERR_HSM_KEY = -404,       /* key not found or unusable */
    KV_ERR_HSM_MECHANISM = -405, /* mechanism not supported */
    KV_ERR_HSM_KCV = -406,       /* key check value mismatch */
    KV_ERR_HSM_SESSION = -407,
    KV_ERR_HSM_ROLE = -408, /* the key's role does not allow this operation */

    /* store: -500 .. -599 */
    KV_ERR_STORE = -500,
    KV_ERR_STORE_BUSY = -501,
    KV_ERR_STORE_UNAVAILABLE = -502,
    KV_ERR_STORE_SCHEMA = -503,
    KV_ERR_EVIDENCE_BROKEN = -504,
    KV_ERR_STORE_TAMPERED = -505, /* a row's MAC does not verify (changed outside kortvagt) */

    /* policy: -600 .. -699 */
    KV_ERR_POLICY = -600,
    KV_ERR_PERMISSION = -601,
    KV_ERR_TRIES_BLOCKED = -602, /* too many consecutive wrong PINs or card codes */
};

/*
 * Format a reason into a caller's buffer (the "why"/"err" out-parameters of
 * loaders and parsers). buf may be NULL or cap 0: then nothing is written.
 */
void kv_errf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Human-readable text of a KV_ERR_* code; never NULL, static storage. */
const char *kv_strerror(int err);

/*
 * Process exit code for an error (the CLI contract): 0 success or match, 1 a
 * negative verification result (not an error), 2 usage errors, then one code
 * per class: 3 reader/PC/SC, 4 card or card data, 5 HSM, 6 store, 7 policy,
 * 8 I/O, 9 internal.
 */
int kv_exit_code(int err);

enum {
    KV_EXIT_OK = 0,
    KV_EXIT_MISMATCH = 1,
    KV_EXIT_USAGE = 2,
    KV_EXIT_READER = 3,
    KV_EXIT_CARD = 4,
    KV_EXIT_HSM = 5,
    KV_EXIT_STORE = 6,
    KV_EXIT_POLICY = 7,
    KV_EXIT_IO = 8,
    KV_EXIT_INTERNAL = 9,
};

#endif
