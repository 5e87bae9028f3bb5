using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using CsCheck;
using PsIpc.Transport;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;
using Xunit;
using Xunit.Abstractions;

namespace PsIpc.Fuzz.Tests
{
    /// <summary>
    /// The shared-secret exchange (Sockets/SocketHandshake*.cs, docs/protocol.md 11) over a real socket pair: a server
    /// fed random, mutated and valid client streams, and a client fed what a fake server sends. Each side must finish
    /// within its handshake timeout with a documented error, or succeed exactly when the stream is a correct exchange.
    /// Streams keep valid proofs through mutations: with FixMacs the harness writes the right HMAC into an AuthResponse
    /// (server target) or AuthChallenge (client target) once it knows the other side's nonce, as fuzzers fix checksums.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public sealed class SocketHandshakeFuzzTests : IDisposable
    {
        public const string ServerTarget = "handshake-server";
        public const string ClientTarget = "handshake-client";

        private static readonly IpcErrorKind[] ServerDocumented =
        {
            IpcErrorKind.AuthenticationRequired, IpcErrorKind.AuthenticationFailed, IpcErrorKind.HandshakeTimeout,
            IpcErrorKind.ProtocolError, IpcErrorKind.PeerDisconnected, IpcErrorKind.ProtocolVersionMismatch,
        };

        private static readonly IpcErrorKind[] ClientDocumented =
        {
            IpcErrorKind.AuthenticationFailed, IpcErrorKind.AuthenticationRequired, IpcErrorKind.ServerBusy,
            IpcErrorKind.ConnectTimeout, IpcErrorKind.PeerDisconnected,
        };

        /// <summary>A hostile case's handshake timeout: short, since a silent peer costs this much each time.</summary>
        private static readonly TimeSpan ShortTimeout = TimeSpan.FromMilliseconds(300);

        // The key derivation costs 100,000 HMACs: once for the whole run.
        private static readonly SocketSecurity Security = NewSecurity();
        private static readonly byte[] Key = Security.Key;

        private readonly ITestOutputHelper _output;
        private readonly Socket _listener;
        private readonly string _path;

        public SocketHandshakeFuzzTests(ITestOutputHelper output)
        {
            _output = output;
            _path = Path.Combine(Path.GetTempPath(), $"psipc-fuzz-hs-{Environment.ProcessId}-{Guid.NewGuid():N}".Substring(0, 48) + ".sock");
            _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _listener.Bind(new UnixDomainSocketEndPoint(_path));
            _listener.Listen(16);
        }

        public void Dispose()
        {
            _listener.Dispose();
            File.Delete(_path);
        }

        private static SocketSecurity NewSecurity()
        {
            var security = new SocketSecurity { Secret = Encoding.UTF8.GetBytes("fuzz: a secret of more than 16 characters") };
            _ = security.Key;
            return security;
        }

        public enum Ending { Close, Silent }

        public sealed record Case(byte[] Stream, int[] Splits, bool FixMacs, Ending Ending)
        {
            public override string ToString() => $"fix MACs {FixMacs}, then {Ending}, splits [{string.Join(",", Splits)}], {Stream.Length} bytes {Fuzz.Hex(Stream)}";
        }

        private static byte[] Frame(FrameType type, byte[] payload) => FrameHeader.Frame(type, payload);

        private static byte[] Nonce(byte seed) => Enumerable.Range(0, 32).Select(i => (byte)(seed + i)).ToArray();

        /// <summary>A client's side of a correct exchange; the AuthResponse's MAC is a placeholder that FixMacs replaces.</summary>
        internal static byte[] ValidClientStream(byte seed) => Frame(FrameType.AuthRequest, new byte[] { 1 }.Concat(Nonce(seed)).ToArray())
            .Concat(Frame(FrameType.AuthResponse, new byte[32])).ToArray();

        /// <summary>A server's side of a correct exchange after the client's AuthRequest; the challenge's MAC is a placeholder.</summary>
        internal static byte[] ValidServerStream(byte seed) => Frame(FrameType.AuthChallenge, Nonce(seed).Concat(new byte[32]).ToArray())
            .Concat(Frame(FrameType.AuthAccepted, Array.Empty<byte>())).ToArray();

        private static Gen<Case> CasesFor(string target, Gen<byte[]> valid)
        {
            IReadOnlyList<byte[]> seeds = Corpus.Seeds(target);
            Gen<byte[]> streams = Gen.Frequency((2, Streams.Random), (4, Streams.Mutated(seeds)), (3, valid), (4, Streams.Mutated(valid, seeds)));
            return Gen.Select(streams, Streams.Splits, Gen.Int[0, 9], Gen.Int[0, 29],
                (s, splits, fix, silent) => new Case(s, splits, fix != 0, silent == 0 ? Ending.Silent : Ending.Close));
        }

        internal static IEnumerable<Case> Replays(byte[] stream)
        {
            foreach (bool fix in new[] { true, false })
            foreach (int[] split in new[] { new[] { int.MaxValue }, new[] { 1, 4 } })
            foreach (Ending ending in new[] { Ending.Close, Ending.Silent })
                yield return new Case(stream, split, fix, ending);
        }

        /// <summary>The frames at the start of a stream, as far as their headers say (payloads cut at the end).</summary>
        private static List<(int Offset, byte Type, uint Length)> Headers(byte[] s)
        {
            var frames = new List<(int, byte, uint)>();
            for (int at = 0; s.Length - at >= 5 && frames.Count < 4;)
            {
                uint length = BitConverter.ToUInt32(s, at);
                frames.Add((at, s[at + 4], length));
                if (length > s.Length) break;
                at += 5 + (int)length;
            }
            return frames;
        }

        private static void SendChunks(Socket socket, byte[] bytes, int from, int to, int[] splits)
        {
            foreach (var (offset, count) in Streams.Chunks(to - from, splits))
            {
                int sent = 0;
                while (sent < count) sent += socket.Send(bytes, from + offset + sent, count - sent, SocketFlags.None);
            }
        }

        private static byte[]? ReadFrame(Socket socket)
        {
            try
            {
                var header = new byte[5];
                if (!ReadExactly(socket, header)) return null;
                uint length = BitConverter.ToUInt32(header, 0);
                if (length > 4096) return header;
                var frame = new byte[5 + length];
                header.CopyTo(frame, 0);
                return ReadExactly(socket, frame.AsSpan(5)) ? frame : null;
            }
            catch (SocketException)
            {
                return null;
            }
        }

        private static bool ReadExactly(Socket socket, Span<byte> buffer)
        {
            for (int got = 0; got < buffer.Length;)
            {
                int n = socket.Receive(buffer.Slice(got));
                if (n == 0) return false;
                got += n;
            }
            return true;
        }

        private static T Finishes<T>(Task<T> task, TimeSpan timeout, string what)
        {
            if (!((IAsyncResult)task).AsyncWaitHandle.WaitOne(timeout + Fuzz.Patience)) throw new Xunit.Sdk.XunitException($"{what} did not end {Fuzz.Patience.TotalSeconds} s after its {timeout.TotalSeconds} s handshake timeout (a hang)");
            return task.GetAwaiter().GetResult();
        }

        // ---- the server fed client streams ----

        [Fact]
        public void AServerFedAnyClientStreamEndsWithADocumentedErrorWithinItsTimeoutOrAcceptsAValidExchange()
        {
            Gen<byte[]> valid = Gen.Byte.Select(ValidClientStream);
            Fuzz.Run(ServerTarget, CasesFor(ServerTarget, valid), CheckServer, c => c.Stream, c => c.ToString(), _output, threads: 1);
        }

        internal void CheckServer(Case c)
        {
            var frames = Headers(c.Stream);
            bool validRequest = c.Stream.Length >= 38 && frames[0] is { Type: 0x04, Length: 33 } && c.Stream[5] == SocketHandshake.AuthVersion;
            bool validResponse = frames.Count >= 2 && frames[1] is { Type: 0x06, Length: 32 } && c.Stream.Length >= frames[1].Offset + 37;
            bool expectSuccess = c.FixMacs && validRequest && validResponse;
            TimeSpan timeout = expectSuccess ? Fuzz.Patience : ShortTimeout;

            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = (int)Fuzz.Patience.TotalMilliseconds };
            client.Connect(new UnixDomainSocketEndPoint(_path));
            Socket served = _listener.Accept();
            Task<Stream> server = SocketHandshake.ServerAsync(served, Security, timeout, "fuzz");
            byte[] stream = (byte[])c.Stream.Clone();
            try
            {
                if (c.FixMacs && validRequest)
                {
                    SendChunks(client, stream, 0, 38, c.Splits);
                    byte[]? challenge = ReadFrame(client);
                    if (validResponse && challenge is { Length: 69 } && challenge[4] == 0x05)
                    {
                        byte[] serverNonce = challenge.AsSpan(5, 32).ToArray();
                        byte[] clientNonce = stream.AsSpan(6, 32).ToArray();
                        SocketHandshake.Mac(Key, Encoding.ASCII.GetBytes("PSIPC-AUTH-CLIENT"), serverNonce, clientNonce).CopyTo(stream, frames[1].Offset + 5);
                    }
                    SendChunks(client, stream, 38, stream.Length, c.Splits);
                }
                else
                {
                    SendChunks(client, stream, 0, stream.Length, c.Splits);
                }
                if (c.Ending == Ending.Close) client.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException) { } // the server hung up first

            Stream? accepted = null;
            try
            {
                accepted = Finishes(server, timeout, "The server's handshake");
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                Fuzz.AssertDocumented(e, ServerDocumented, "SocketHandshake.ServerAsync");
                Fuzz.Outcome(((IpcException)e).Kind.ToString());
                Fuzz.Expect(!expectSuccess, () => $"a correct exchange was refused: {((IpcException)e).Kind}: {e.Message}");
                return;
            }
            using (accepted)
            {
                Fuzz.Outcome("accepted");
                Fuzz.Expect(expectSuccess, () => "the server accepted a client that did not prove the secret");
                byte[]? verdict = ReadFrame(client);
                Fuzz.Expect(verdict is { Length: 5 } && verdict[4] == 0x07, () => "the server accepted but did not say AuthAccepted");
            }
        }

        // ---- the client fed server streams ----

        [Fact]
        public void AClientFedAnyServerStreamEndsWithADocumentedErrorWithinItsDeadlineOrAcceptsAValidExchange()
        {
            Gen<byte[]> valid = Gen.Byte.Select(ValidServerStream);
            Fuzz.Run(ClientTarget, CasesFor(ClientTarget, valid), CheckClient, c => c.Stream, c => c.ToString(), _output, threads: 1);
        }

        internal void CheckClient(Case c)
        {
            var frames = Headers(c.Stream);
            bool validChallenge = frames.Count >= 1 && frames[0] is { Type: 0x05, Length: 64 } && c.Stream.Length >= 69;
            bool accepted = frames.Count >= 2 && frames[1].Type == 0x07 && frames[1].Length <= 4096 && c.Stream.Length >= frames[1].Offset + 5 + frames[1].Length;
            bool expectSuccess = c.FixMacs && validChallenge && accepted;
            TimeSpan timeout = expectSuccess ? Fuzz.Patience : ShortTimeout;

            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(_path));
            using Socket fake = _listener.Accept();
            fake.ReceiveTimeout = (int)Fuzz.Patience.TotalMilliseconds;
            Task<Stream> client = Task.Factory.StartNew(
                () => SocketHandshake.Client(socket, Security, "localhost", "fuzz", Deadline.After(timeout), CancellationToken.None),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            byte[] stream = (byte[])c.Stream.Clone();
            try
            {
                byte[]? request = ReadFrame(fake);
                if (request == null && !expectSuccess)
                {
                    // The client closed without a byte. Its deadline (300 ms for a hostile case) runs from before it
                    // writes its request: on a loaded machine (or the first case, compiling the path) it can pass before
                    // the client ever got to write, and the guard closes the socket. That is the documented end of a
                    // handshake that did not finish in time, not a client that skips its request: it must then be
                    // ConnectTimeout, and nothing else. (Valid exchanges have 15 s: there a missing request still fails.)
                    try
                    {
                        Finishes(client, timeout, "The client's handshake");
                    }
                    catch (IpcException e) when (e.Kind == IpcErrorKind.ConnectTimeout)
                    {
                        Fuzz.Outcome("ConnectTimeout before the request");
                        return;
                    }
                    catch (Exception e) when (e is not Xunit.Sdk.XunitException)
                    {
                        throw new Xunit.Sdk.XunitException($"the client closed without its AuthRequest and then reported {e.GetType().Name}: {e.Message}", e);
                    }
                    throw new Xunit.Sdk.XunitException("the client closed without its AuthRequest and then reported success");
                }
                Fuzz.Expect(request is { Length: 38 } && request[4] == 0x04 && request[5] == 1, () => "the client did not start with its AuthRequest");
                if (c.FixMacs && validChallenge)
                {
                    byte[] clientNonce = request!.AsSpan(6, 32).ToArray();
                    byte[] serverNonce = stream.AsSpan(5, 32).ToArray();
                    SocketHandshake.Mac(Key, Encoding.ASCII.GetBytes("PSIPC-AUTH-SERVER"), clientNonce, serverNonce).CopyTo(stream, 37);
                }
                SendChunks(fake, stream, 0, stream.Length, c.Splits);
                if (c.Ending == Ending.Close) fake.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException) { } // the client hung up first

            Stream? secured;
            try
            {
                secured = Finishes(client, timeout, "The client's handshake");
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                Fuzz.AssertDocumented(e, ClientDocumented, "SocketHandshake.Client");
                Fuzz.Outcome(((IpcException)e).Kind.ToString());
                Fuzz.Expect(!expectSuccess, () => $"a correct exchange failed: {((IpcException)e).Kind}: {e.Message}");
                return;
            }
            using (secured)
            {
                Fuzz.Outcome("accepted");
                Fuzz.Expect(expectSuccess, () => "the client accepted a server that did not prove the secret");
            }
        }
    }
}
