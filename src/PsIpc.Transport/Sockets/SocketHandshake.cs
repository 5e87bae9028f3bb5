using System;
using System.IO;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;

namespace PsIpc.Transport.Sockets
{
    /// <summary>
    /// What happens on a connected socket before its framing starts, when the server asked for it: TLS, then
    /// the shared-secret exchange (docs/protocol.md 11):
    /// <code>
    /// (key: PBKDF2 of the secret, SocketSecurity.Key)
    /// client -> AuthRequest   version u8 (1) | client nonce (32)
    /// server -> AuthChallenge server nonce (32) | HMAC-SHA256(key, "PSIPC-AUTH-SERVER" | client nonce | server nonce)
    /// client -> AuthResponse  HMAC-SHA256(key, "PSIPC-AUTH-CLIENT" | server nonce | client nonce)
    /// server -> AuthAccepted  (empty)
    /// </code>
    /// Either side that finds the other's HMAC wrong sends an Error frame (AuthenticationFailed) and closes.
    /// Both sides prove they know the secret without sending it; fresh nonces on both sides make a recorded
    /// exchange useless to replay. The whole of it must finish within the handshake timeout, whatever the peer
    /// trickles: a timer closes the socket at the deadline. The server side is asynchronous: a thousand slow
    /// clients hold no thread.
    /// </summary>
    internal static partial class SocketHandshake
    {
        public const byte AuthVersion = 1;
        public const int NonceSize = 32;
        public const int MacSize = 32;
        private const int MaxAuthFrame = 4096;
        private static readonly byte[] ServerLabel = Encoding.ASCII.GetBytes("PSIPC-AUTH-SERVER");
        private static readonly byte[] ClientLabel = Encoding.ASCII.GetBytes("PSIPC-AUTH-CLIENT");

        // .NET Framework (Windows PowerShell 5.1) refuses SslProtocols.None unless the system's default TLS
        // versions are switched on, which they are not by default: ask for TLS 1.2 there. Elsewhere None lets
        // the system choose (TLS 1.2 and 1.3).
        private static readonly SslProtocols Protocols =
            System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.OrdinalIgnoreCase)
                ? SslProtocols.Tls12
                : SslProtocols.None;

        /// <summary>
        /// Server side, without holding a thread while the client is slow. Returns the stream the connection's
        /// framing runs on (TLS or not). Every failure is an IpcException: the caller runs on the thread pool.
        /// </summary>
        /// <exception cref="IpcException">AuthenticationRequired, AuthenticationFailed, HandshakeTimeout, ProtocolError, PeerDisconnected.</exception>
        public static async Task<Stream> ServerAsync(Socket socket, SocketSecurity security, TimeSpan timeout, string name)
        {
            var sniff = new HttpSniffStream(new NetworkStream(socket, ownsSocket: true));
            Stream stream = sniff;
            using (var guard = new HandshakeGuard(socket, Deadline.After(timeout), CancellationToken.None))
            {
                try
                {
                    if (security.ServerUsesTls)
                    {
                        var ssl = new SslStream(sniff, leaveInnerStreamOpen: false);
                        stream = ssl;
                        await ssl.AuthenticateAsServerAsync(security.Certificate, false, Protocols, false).ConfigureAwait(false);
                    }
                    if (security.HasSecret) await ServerExchangeAsync(stream, security.Key, name).ConfigureAwait(false);
                    guard.Finish();
                    return stream;
                }
                catch (IpcException)
                {
                    stream.Dispose();
                    throw;
                }
                catch (Exception e)
                {
                    stream.Dispose();
                    if (guard.TimedOut)
                    {
                        throw new IpcException(IpcErrorKind.HandshakeTimeout,
                            $"A client of '{name}' did not complete the {What(security)} within {timeout.TotalSeconds} s; it was disconnected.", name, e);
                    }
                    if (sniff.SawHttp) throw HttpSniffer.Refusal(name);
                    if (e is IOException || e is SocketException || e is ObjectDisposedException)
                    {
                        throw new IpcException(IpcErrorKind.PeerDisconnected,
                            $"A client of '{name}' left during the {What(security)} ({Innermost(e)}).", name, e);
                    }
                    // AuthenticationException, or the platform refusing the certificate or the protocol settings.
                    throw new IpcException(IpcErrorKind.AuthenticationFailed,
                        $"The TLS handshake with a client of '{name}' failed ({Innermost(e)}); it was disconnected.", name, e);
                }
            }
        }

        /// <summary>Client side: waits (the caller has nothing else to do). Returns the stream the connection's framing runs on.</summary>
        /// <exception cref="IpcException">AuthenticationFailed, AuthenticationRequired, ServerBusy, ConnectTimeout, PeerDisconnected.</exception>
        public static Stream Client(Socket socket, SocketSecurity security, string host, string name, Deadline deadline, CancellationToken cancellationToken)
        {
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            string? refusedCertificate = null;
            bool inTls = false;
            using (var guard = new HandshakeGuard(socket, deadline, cancellationToken))
            {
                try
                {
                    if (security.UseTls)
                    {
                        string? pin = SocketSecurity.NormalizeThumbprint(security.CertificateThumbprint);
                        var ssl = new SslStream(stream, false, (sender, certificate, chain, errors) =>
                        {
                            var presented = certificate == null ? null : new X509Certificate2(certificate);
                            // A pin trusts that one certificate and no other, whoever signed the others.
                            bool accepted = pin != null
                                ? presented != null && string.Equals(presented.Thumbprint, pin, StringComparison.OrdinalIgnoreCase)
                                : errors == SslPolicyErrors.None;
                            if (!accepted)
                            {
                                refusedCertificate = presented == null
                                    ? $"the server presented no certificate ({errors})"
                                    : pin != null
                                        ? $"its certificate '{presented.Subject}' has thumbprint {presented.Thumbprint}, not the pinned {pin}"
                                        : $"its certificate '{presented.Subject}' (thumbprint {presented.Thumbprint}) is not trusted: {errors}";
                            }
                            return accepted;
                        });
                        stream = ssl;
                        inTls = true;
                        ssl.AuthenticateAsClientAsync(host, null, Protocols, false).GetAwaiter().GetResult();
                        inTls = false;
                    }
                    if (security.HasSecret) ClientExchangeAsync(stream, security.Key, name).GetAwaiter().GetResult();
                    guard.Finish();
                    return stream;
                }
                catch (IpcException)
                {
                    stream.Dispose();
                    throw;
                }
                catch (Exception e)
                {
                    stream.Dispose();
                    cancellationToken.ThrowIfCancellationRequested();
                    if (guard.TimedOut)
                    {
                        throw new IpcException(IpcErrorKind.ConnectTimeout,
                            $"Connected to {host} but the {What(security)} did not finish in time (is the server started with {ServerSwitches(security)}?).", name, e);
                    }
                    if (refusedCertificate != null)
                    {
                        throw new IpcException(IpcErrorKind.AuthenticationFailed,
                            $"The TLS server at {host} was refused: {refusedCertificate}. To trust a self-signed certificate, pin its thumbprint with " +
                            "-CertificateThumbprint, after checking it with the server's owner (on the server: $certificate.Thumbprint).", name, e);
                    }
                    if (inTls)
                    {
                        throw new IpcException(IpcErrorKind.AuthenticationFailed,
                            $"The TLS handshake with {host} failed ({Innermost(e)}); is the server started with -Certificate?", name, e);
                    }
                    if (!security.UseTls && (e is IOException || e is SocketException || e is ObjectDisposedException))
                    {
                        // A TLS server takes the AuthRequest for a broken TLS hello and hangs up.
                        throw new IpcException(IpcErrorKind.AuthenticationFailed,
                            $"The server at {host} closed the connection during the {What(security)} ({Innermost(e)}); does it require TLS (-UseTls)?", name, e);
                    }
                    throw new IpcException(IpcErrorKind.PeerDisconnected,
                        $"The server at {host} closed the connection during the {What(security)} ({Innermost(e)}).", name, e);
                }
            }
        }

        private static async Task ServerExchangeAsync(Stream stream, byte[] key, string name)
        {
            Frame request = await ReadFrameAsync(stream, FrameType.AuthRequest).ConfigureAwait(false);
            if (request.Type != FrameType.AuthRequest)
            {
                var required = new IpcException(IpcErrorKind.AuthenticationRequired,
                    $"A client of '{name}' did not present the shared secret (the server was started with -Secret); it was refused.", name);
                await WriteErrorAsync(stream, IpcErrorKind.AuthenticationRequired,
                    "This server requires the shared-secret exchange before anything else: connect with -Secret (docs/protocol.md, section 11).").ConfigureAwait(false);
                throw required;
            }
            if (request.Payload.Length != 1 + NonceSize)
            {
                await WriteErrorAsync(stream, IpcErrorKind.ProtocolError, "AuthRequest must be 33 bytes: version and a 32-byte nonce.").ConfigureAwait(false);
                throw new IpcException(IpcErrorKind.ProtocolError, $"A client of '{name}' sent a malformed AuthRequest ({request.Payload.Length} bytes).", name);
            }
            if (request.Payload[0] != AuthVersion)
            {
                await WriteErrorAsync(stream, IpcErrorKind.ProtocolVersionMismatch, $"This server speaks authentication version {AuthVersion}.").ConfigureAwait(false);
                throw new IpcException(IpcErrorKind.ProtocolVersionMismatch,
                    $"A client of '{name}' asked for authentication version {request.Payload[0]}; this server speaks {AuthVersion}.", name);
            }
            byte[] clientNonce = Slice(request.Payload, 1, NonceSize);
            byte[] serverNonce = NewNonce();
            byte[] challenge = new byte[NonceSize + MacSize];
            Buffer.BlockCopy(serverNonce, 0, challenge, 0, NonceSize);
            Buffer.BlockCopy(Mac(key, ServerLabel, clientNonce, serverNonce), 0, challenge, NonceSize, MacSize);
            await WriteFrameAsync(stream, FrameType.AuthChallenge, challenge).ConfigureAwait(false);

            Frame response = await ReadFrameAsync(stream).ConfigureAwait(false);
            if (response.Type == FrameType.Error)
            {
                IpcException refusal = ErrorFrame.Decode(response.Payload, name);
                throw new IpcException(IpcErrorKind.AuthenticationFailed,
                    $"A client of '{name}' has another shared secret (it refused the server's proof); it was disconnected. {refusal.Message}", name, refusal);
            }
            if (response.Type != FrameType.AuthResponse || response.Payload.Length != MacSize)
            {
                await WriteErrorAsync(stream, IpcErrorKind.ProtocolError, "Expected an AuthResponse of 32 bytes.").ConfigureAwait(false);
                throw new IpcException(IpcErrorKind.ProtocolError, $"A client of '{name}' answered the challenge with something else than an AuthResponse.", name);
            }
            if (!FixedTimeEquals(response.Payload, Mac(key, ClientLabel, serverNonce, clientNonce)))
            {
                await WriteErrorAsync(stream, IpcErrorKind.AuthenticationFailed, "The shared secret is wrong.").ConfigureAwait(false);
                throw new IpcException(IpcErrorKind.AuthenticationFailed,
                    $"A client of '{name}' failed the shared-secret check (wrong secret); it was refused.", name);
            }
            await WriteFrameAsync(stream, FrameType.AuthAccepted, Array.Empty<byte>()).ConfigureAwait(false);
        }

        private static async Task ClientExchangeAsync(Stream stream, byte[] key, string name)
        {
            byte[] clientNonce = NewNonce();
            var request = new byte[1 + NonceSize];
            request[0] = AuthVersion;
            Buffer.BlockCopy(clientNonce, 0, request, 1, NonceSize);
            await WriteFrameAsync(stream, FrameType.AuthRequest, request).ConfigureAwait(false);

            Frame challenge = await ReadServerFrameAsync(stream, name).ConfigureAwait(false);
            if (challenge.Type != FrameType.AuthChallenge || challenge.Payload.Length != NonceSize + MacSize)
            {
                throw NotAnAuthServer(name, $"it answered with a frame of type 0x{(byte)challenge.Type:X2}");
            }
            byte[] serverNonce = Slice(challenge.Payload, 0, NonceSize);
            if (!FixedTimeEquals(Slice(challenge.Payload, NonceSize, MacSize), Mac(key, ServerLabel, clientNonce, serverNonce)))
            {
                await WriteErrorAsync(stream, IpcErrorKind.AuthenticationFailed, "The server's proof of the shared secret is wrong.").ConfigureAwait(false);
                throw new IpcException(IpcErrorKind.AuthenticationFailed,
                    $"The shared secret does not match the server's (its proof of the secret is wrong for the -Secret given); nothing was sent to '{name}'.", name);
            }
            await WriteFrameAsync(stream, FrameType.AuthResponse, Mac(key, ClientLabel, serverNonce, clientNonce)).ConfigureAwait(false);
            Frame result = await ReadServerFrameAsync(stream, name).ConfigureAwait(false);
            if (result.Type != FrameType.AuthAccepted) throw NotAnAuthServer(name, $"it sent a frame of type 0x{(byte)result.Type:X2} instead of AuthAccepted");
        }
    }
}
