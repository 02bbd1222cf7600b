/* Work around a poppler 22.12 bug (Debian 12's pdfsig): after CERT_PKIXVerifyCert() it reads
 * PORT_GetError() even when the call succeeded, so a stale error code from an earlier, unrelated
 * NSS call turns a good chain into "Unknown issue with Certificate or corrupted data". Poppler
 * fixed this upstream by reading the error only when the call fails. Preloaded into pdfsig, this
 * wrapper clears the error code when (and only when) NSS reports success; NSS's verdict is unchanged. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <nss/cert.h>
#include <nspr/prerror.h>

SECStatus CERT_PKIXVerifyCert(CERTCertificate *cert, SECCertificateUsage usages, CERTValInParam *in,
                              CERTValOutParam *out, void *wincx) {
    SECStatus (*real)(CERTCertificate *, SECCertificateUsage, CERTValInParam *, CERTValOutParam *, void *) =
        dlsym(RTLD_NEXT, "CERT_PKIXVerifyCert");
    SECStatus rv = real(cert, usages, in, out, wincx);
    if (rv == SECSuccess)
        PORT_SetError(0);
    return rv;
}
