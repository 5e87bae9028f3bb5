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
        /// <summary>PBKDF2-HMAC-SHA256 of the secret with this salt and count is the HMAC key (docs/protocol.md 11).</summary>
        public const int KeyIterations = 100000;
        internal static readonly byte[] KeySalt = System.Text.Encoding.ASCII.GetBytes("PsIpc shared secret v1");

        private byte[]? _secret;
        private byte[]? _key;

        /// <summary>The shared secret's bytes (UTF-8 of the text); null for none. Kept as a private copy.</summary>
        public byte[]? Secret
        {
            get => _secret;
            set
            {
                _secret = value == null ? null : (byte[])value.Clone();
                _key = null;
            }
        }

        /// <summary>
        /// The key the exchange's HMACs use: the secret stretched by PBKDF2, so that each guess of a weak secret
        /// from a recorded exchange costs 100,000 HMACs. Computed once per instance (about 0.1 s). Only asked for
        /// when <see cref="HasSecret"/>.
        /// </summary>
        internal byte[] Key => _key ?? (_key = DeriveKey(_secret ?? throw new InvalidOperationException("No secret is set to derive a key from.")));

        /// <summary>PBKDF2-HMAC-SHA256 (RFC 8018), one 32-byte block: netstandard2.0's Rfc2898DeriveBytes has SHA-1 only.</summary>
        internal static byte[] DeriveKey(byte[] secret)
        {
            using (var hmac = new System.Security.Cryptography.HMACSHA256(secret))
            {
                var first = new byte[KeySalt.Length + 4];
                Buffer.BlockCopy(KeySalt, 0, first, 0, KeySalt.Length);
                first[first.Length - 1] = 1; // block index 1, big-endian
                byte[] u = hmac.ComputeHash(first);
                var result = (byte[])u.Clone();
                for (int i = 1; i < KeyIterations; i++)
                {
                    u = hmac.ComputeHash(u);
                    for (int j = 0; j < result.Length; j++) result[j] ^= u[j];
                }
                return result;
            }
        }

        /// <summary>Server: the certificate (with its private key) that turns TLS on.</summary>
        public X509Certificate2? Certificate { get; set; }

        /// <summary>Client: speak TLS; the server's certificate must be trusted for the host name, or match <see cref="CertificateThumbprint"/>.</summary>
        public bool UseTls { get; set; }

        /// <summary>Client: the SHA-1 thumbprint (hex) of the one certificate trusted whatever its chain (a self-signed one).</summary>
        public string? CertificateThumbprint { get; set; }

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

        internal static string? NormalizeThumbprint(string? thumbprint) =>
            thumbprint?.Replace(" ", string.Empty).Replace(":", string.Empty).ToUpperInvariant();
    }
}
