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
    // The exchange's frames and primitives: reading and writing its small frames, MACs, nonces, messages.
    internal static partial class SocketHandshake
    {
        // A server frame during the exchange; an Error frame is the server's verdict.
        private static async Task<Frame> ReadServerFrameAsync(Stream stream, string name)
        {
            Frame frame;
            try
            {
                frame = await ReadFrameAsync(stream).ConfigureAwait(false);
            }
            catch (IpcException e) when (e.Kind == IpcErrorKind.ProtocolError)
            {
                throw NotAnAuthServer(name, e.Message);
            }
            if (frame.Type != FrameType.Error) return frame;
            IpcException error = ErrorFrame.Decode(frame.Payload, name);
            if (error.Kind == IpcErrorKind.AuthenticationFailed || error.Kind == IpcErrorKind.AuthenticationRequired) throw error;
            if (error.Kind == IpcErrorKind.PipeBusy) throw new IpcException(IpcErrorKind.ServerBusy, error.Message, name, error);
            // A PsIpc server without -Secret rejects the AuthRequest as an unknown frame.
            throw new IpcException(IpcErrorKind.AuthenticationFailed,
                $"The server of '{name}' does not expect a shared secret (was it started without -Secret?). {error.Message}", name, error);
        }

        private static IpcException NotAnAuthServer(string name, string why) =>
            new IpcException(IpcErrorKind.AuthenticationFailed,
                $"The server of '{name}' did not answer the shared-secret exchange ({why}); is it a PsIpc server started with -Secret?", name);

        /// <summary>
        /// Reads one whole frame of at most 4 KiB (the exchange's frames are tiny). With <paramref name="only"/>,
        /// a frame of another type is returned with an empty payload, unread: the caller refuses it anyway.
        /// </summary>
        private static async Task<Frame> ReadFrameAsync(Stream stream, FrameType? only = null)
        {
            var header = new byte[FrameHeader.Size];
            await ReadExactlyAsync(stream, header, header.Length).ConfigureAwait(false);
            if (only.HasValue && header[4] != (byte)only.Value) return new Frame((FrameType)header[4], Array.Empty<byte>());
            uint length = FrameHeader.ReadLength(header, 0);
            if (length > MaxAuthFrame)
            {
                throw new IpcException(IpcErrorKind.ProtocolError, $"The peer sent a {length}-byte frame during authentication; at most {MaxAuthFrame} are expected.");
            }
            var payload = new byte[length];
            await ReadExactlyAsync(stream, payload, payload.Length).ConfigureAwait(false);
            return new Frame((FrameType)header[4], payload);
        }

        private static async Task ReadExactlyAsync(Stream stream, byte[] buffer, int count)
        {
            int filled = 0;
            while (filled < count)
            {
                int n = await stream.ReadAsync(buffer, filled, count - filled).ConfigureAwait(false);
                if (n == 0) throw new IOException("the peer closed the connection");
                filled += n;
            }
        }

        private static async Task WriteFrameAsync(Stream stream, FrameType type, byte[] payload)
        {
            byte[] frame = FrameHeader.Frame(type, payload);
            await stream.WriteAsync(frame, 0, frame.Length).ConfigureAwait(false);
            await stream.FlushAsync().ConfigureAwait(false);
        }

        private static async Task WriteErrorAsync(Stream stream, IpcErrorKind kind, string message)
        {
            try
            {
                await WriteFrameAsync(stream, FrameType.Error, ErrorFrame.Encode(kind, message)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException) { } // it left already
        }

        internal static byte[] Mac(byte[] key, byte[] label, byte[] first, byte[] second)
        {
            using (var hmac = new HMACSHA256(key))
            {
                var data = new byte[label.Length + first.Length + second.Length];
                Buffer.BlockCopy(label, 0, data, 0, label.Length);
                Buffer.BlockCopy(first, 0, data, label.Length, first.Length);
                Buffer.BlockCopy(second, 0, data, label.Length + first.Length, second.Length);
                return hmac.ComputeHash(data);
            }
        }

        private static byte[] NewNonce()
        {
            var nonce = new byte[NonceSize];
            using (var random = RandomNumberGenerator.Create()) random.GetBytes(nonce);
            return nonce;
        }

        private static byte[] Slice(byte[] source, int offset, int count)
        {
            var slice = new byte[count];
            Buffer.BlockCopy(source, offset, slice, 0, count);
            return slice;
        }

        // No early exit: how long the comparison takes says nothing about where the bytes differ.
        private static bool FixedTimeEquals(byte[] a, byte[] b)
        {
            if (a.Length != b.Length) return false;
            int diff = 0;
            for (int i = 0; i < a.Length; i++) diff |= a[i] ^ b[i];
            return diff == 0;
        }

        private static string What(SocketSecurity security) =>
            security.ServerUsesTls || security.UseTls
                ? security.HasSecret ? "TLS handshake and shared-secret exchange" : "TLS handshake"
                : "shared-secret exchange";

        private static string ServerSwitches(SocketSecurity security) =>
            security.UseTls ? security.HasSecret ? "-Certificate and -Secret" : "-Certificate" : "-Secret";

        private static string Innermost(Exception e)
        {
            while (e.InnerException != null) e = e.InnerException;
            return e.Message;
        }

        /// <summary>
        /// Closes the socket when the deadline passes or the token is cancelled, unless <see cref="Finish"/>
        /// came first: blocking reads of a trickling peer then end at once.
        /// </summary>
        private sealed class HandshakeGuard : IDisposable
        {
            private const int Running = 0, Finished = 1, Expired = 2;
            private readonly Socket _socket;
            private readonly Timer? _timer;
            private readonly CancellationTokenRegistration _registration;
            private int _state;

            public HandshakeGuard(Socket socket, Deadline deadline, CancellationToken cancellationToken)
            {
                _socket = socket;
                if (!deadline.IsInfinite)
                {
                    _timer = new Timer(_ => Expire(), null, Math.Max(deadline.RemainingMilliseconds, 1), Timeout.Infinite);
                }
                _registration = cancellationToken.Register(Expire);
            }

            public bool TimedOut => Volatile.Read(ref _state) == Expired;

            /// <exception cref="IOException">The deadline passed just before: the socket is closed.</exception>
            public void Finish()
            {
                if (Interlocked.CompareExchange(ref _state, Finished, Running) != Running) throw new IOException("the handshake deadline passed");
            }

            private void Expire()
            {
                if (Interlocked.CompareExchange(ref _state, Expired, Running) != Running) return;
                try { _socket.Dispose(); } catch (ObjectDisposedException) { }
            }

            public void Dispose()
            {
                _timer?.Dispose();
                _registration.Dispose();
            }
        }
    }
}
