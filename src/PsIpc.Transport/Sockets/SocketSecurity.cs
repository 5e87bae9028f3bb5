using System;
using System.Security.Cryptography.X509Certificates;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// How a socket connection proves who is at the other end before any message: a shared secret checked
    /// by an HMAC challenge (both ways), TLS, or both (TLS first, the secret inside it). docs/protocol.md 11.
    /// </summary>
    public sealed class SocketSecurity
    {
        private byte[] _secret;

        /// <summary>The shared secret's bytes (UTF-8 of the text); null for none. Kept as a private copy.</summary>
        public byte[] Secret
        {
            get => _secret;
            set => _secret = value == null ? null : (byte[])value.Clone();
        }

        /// <summary>Server: the certificate (with its private key) that turns TLS on.</summary>
        public X509Certificate2 Certificate { get; set; }

        /// <summary>Client: speak TLS; the server's certificate must be trusted for the host name, or match <see cref="CertificateThumbprint"/>.</summary>
        public bool UseTls { get; set; }

        /// <summary>Client: the SHA-1 thumbprint (hex) of the one certificate trusted whatever its chain (a self-signed one).</summary>
        public string CertificateThumbprint { get; set; }

        public bool HasSecret => _secret != null && _secret.Length > 0;

        internal bool ServerUsesTls => Certificate != null;

        internal bool ServerNeedsHandshake => HasSecret || ServerUsesTls;

        internal bool ClientNeedsHandshake => HasSecret || UseTls;

        /// <summary>Checks what a server needs: a certificate with its private key.</summary>
        /// <exception cref="ArgumentException">The certificate has no private key.</exception>
        public void ValidateForServer()
        {
            if (Certificate != null && !Certificate.HasPrivateKey)
            {
                throw new ArgumentException(
                    $"The certificate '{Certificate.Subject}' ({Certificate.Thumbprint}) has no private key; a TLS server needs one.", nameof(Certificate));
            }
        }

        internal static string NormalizeThumbprint(string thumbprint) =>
            thumbprint?.Replace(" ", string.Empty).Replace(":", string.Empty).ToUpperInvariant();
    }
}
