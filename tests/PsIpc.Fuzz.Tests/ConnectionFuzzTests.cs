using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using CsCheck;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Sockets;
using Xunit;
using Xunit.Abstractions;

namespace PsIpc.Fuzz.Tests
{
    /// <summary>
    /// The readers in their real place: a socket server (Unix domain, each framing) whose client sends random, mutated
    /// and valid streams in random pieces, then ends its side. The server must hand out exactly the messages the stream
    /// holds, report only documented errors, close the connection, and give back every byte of its receive budget.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public sealed class ConnectionFuzzTests : IDisposable
    {
        public const string Target = "connection";

        private static readonly IpcErrorKind[] Documented =
        {
            IpcErrorKind.ProtocolError, IpcErrorKind.MessageTooLarge, IpcErrorKind.ServerBusy, IpcErrorKind.ProtocolVersionMismatch,
            IpcErrorKind.PeerDisconnected, IpcErrorKind.HandshakeTimeout,
            // What the client's own Error frame says (docs/protocol.md 5).
            IpcErrorKind.RemoteError, IpcErrorKind.PipeBusy, IpcErrorKind.AccessDenied, IpcErrorKind.AuthenticationRequired,
            IpcErrorKind.AuthenticationFailed, IpcErrorKind.IdleTimeout,
        };

        private readonly ITestOutputHelper _output;
        private readonly Dictionary<(SocketFraming, int, long), (SocketServerChannel Server, ReceiveBudget Budget)> _servers = new();

        private static int s_next;

        public ConnectionFuzzTests(ITestOutputHelper output) => _output = output;

        public sealed record Case(byte[] Stream, SocketFraming Framing, int Max, long BudgetLimit, int[] Splits)
        {
            public override string ToString() => $"{Framing}, max {Max}, budget {BudgetLimit}, splits [{string.Join(",", Splits)}], {Stream.Length} bytes {Fuzz.Hex(Stream)}";
        }

        private static readonly Gen<SocketFraming> Framings = Gen.OneOf(SocketFraming.LengthPrefixed, SocketFraming.LengthPrefixed, SocketFraming.Line, SocketFraming.Raw);
        private static readonly Gen<int> Maxes = Gen.OneOf(16, 1000, 65536);
        private static readonly Gen<long> Budgets = Gen.OneOf(3000L, 1L << 40);

        [Fact]
        public void AServerFedAnyStreamHandsOutItsMessagesReportsDocumentedErrorsAndLeaksNoBudget()
        {
            IReadOnlyList<byte[]> seeds = Corpus.Seeds(Target);
            Gen<byte[]> streams = Gen.Frequency(
                (2, Streams.Random), (4, Streams.Mutated(seeds)), (3, FrameModel.ValidStream), (3, Streams.Mutated(FrameModel.ValidStream, seeds)),
                (1, PlainReaderFuzzTests.ValidLines));
            Gen<Case> cases = Gen.Select(streams, Framings, Maxes, Budgets, Streams.Splits, (s, f, max, budget, splits) => new Case(s, f, max, budget, splits));
            Fuzz.Run(Target, cases, Check, c => c.Stream, c => c.ToString(), _output, threads: 1);
        }

        internal static IEnumerable<Case> Replays(byte[] stream)
        {
            foreach (SocketFraming framing in new[] { SocketFraming.LengthPrefixed, SocketFraming.Line, SocketFraming.Raw })
            foreach (int max in new[] { 16, 65536 })
            foreach (long budget in new[] { 3000L, 1L << 40 })
            foreach (int[] split in new[] { new[] { int.MaxValue }, new[] { 1, 2, 3 }, new[] { 1 } }) // whole; small chunks; a byte at a time
                yield return new Case(stream, framing, max, budget, split);
        }

        internal void Check(Case c)
        {
            try
            {
                CheckOn(ServerFor(c.Framing, c.Max, c.BudgetLimit), c);
            }
            catch
            {
                // A failed case may leave the server with a leaked budget or a stuck connection: the next case gets a fresh one.
                if (_servers.Remove((c.Framing, c.Max, c.BudgetLimit), out var spoiled)) spoiled.Server.Close(Deadline.After(TimeSpan.FromSeconds(5)));
                throw;
            }
        }

        private static void CheckOn((SocketServerChannel Server, ReceiveBudget Budget) entry, Case c)
        {
            var (server, budget) = entry;
            var items = new List<IpcMessage>();
            // Received while the client sends, as the server's user would: the server's queue holds at most
            // ReceiveBufferMessages messages, and a Raw stream sent a byte at a time and read as it arrives makes a
            // message of each read. A full queue stops the reader (back-pressure, by design), and the client's sends
            // would then wait for the whole SendTimeout (CI found it: 123,932 one-byte sends, blocked after 91,236
            // bytes with 65,536 messages queued; corpus connection/finding-raw-byte-by-byte-fills-the-queue.bin).
            using var sendingDone = new ManualResetEventSlim();
            Task drain = Task.Run(() =>
            {
                while (!sendingDone.IsSet) server.Receive(items, 4096, Deadline.After(TimeSpan.FromMilliseconds(20)), CancellationToken.None);
            });
            try
            {
                SendAndSeeTheEnd(server, c);
            }
            finally
            {
                sendingDone.Set();
                drain.Wait();
            }
            while (server.Receive(items, 4096, Deadline.After(TimeSpan.Zero), CancellationToken.None) > 0) { }
            CheckWhatCame(items, budget, c);
        }

        // The client's side of a case: the stream in the case's chunks, then its end, then the server's end.
        private static void SendAndSeeTheEnd(SocketServerChannel server, Case c)
        {
            using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                client.ReceiveTimeout = (int)Fuzz.Patience.TotalMilliseconds;
                client.SendTimeout = (int)Fuzz.Patience.TotalMilliseconds;
                client.Connect(new UnixDomainSocketEndPoint(server.Path!));
                var sending = Stopwatch.StartNew();
                try
                {
                    foreach (var (offset, count) in Streams.Chunks(c.Stream.Length, c.Splits))
                    {
                        int sent = 0;
                        while (sent < count) sent += client.Send(c.Stream, offset + sent, count - sent, SocketFlags.None);
                    }
                    client.Shutdown(SocketShutdown.Send);
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted ||
                    (e.SocketErrorCode == SocketError.TimedOut && sending.Elapsed < Fuzz.Patience / 2))
                {
                    // The server closed the connection (an error, a goodbye) before it had everything: it read no more.
                    // With a SendTimeout set, .NET on Linux reports a send into a socket whose peer shut down or closed
                    // as TimedOut (110) at once (measured: 1 ms), not as a reset: a TimedOut long before the timeout is
                    // that close. (CI found it: a 123,932-byte stream whose early frame was too large for a 1,000-byte
                    // maximum; corpus connection/finding-server-closes-while-client-sends.bin.) A real hang still
                    // fails: the send then times out only after the whole timeout.
                }
                // The server closes its end only after its reader has handed everything over: then the client reads the end.
                var buffer = new byte[65536];
                try
                {
                    while (client.Receive(buffer) > 0) { }
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
                {
                    throw new Xunit.Sdk.XunitException($"the server kept the connection open {Fuzz.Patience.TotalSeconds} s after the client's end (a hang)");
                }
            }
        }

        // What the server handed out for a case, against what its stream holds; and its receive budget all given back.
        private static void CheckWhatCame(List<IpcMessage> items, ReceiveBudget budget, Case c)
        {
            var messages = items.Where(m => m.Fault == null).ToList();
            var faults = items.Where(m => m.Fault != null).Select(m => m.Fault!).ToList();
            foreach (IpcException fault in faults) Fuzz.AssertDocumented(fault, Documented, $"{c.Framing} server");
            Fuzz.Expect(faults.Count <= 1, () => $"one connection reported {faults.Count} errors: {string.Join(", ", faults.Select(f => f.Kind))}");
            bool busy = faults.Any(f => f.Kind == IpcErrorKind.ServerBusy);
            Fuzz.Outcome($"{c.Framing} {(faults.Count > 0 ? faults[0].Kind.ToString() : "clean end")}{(messages.Count > 0 ? " with messages" : "")}");

            List<byte[]> expected = Expected(c);
            if (c.Framing == SocketFraming.Raw)
            {
                byte[] joined = messages.SelectMany(m => m.Payload).ToArray();
                byte[] all = expected.SelectMany(m => m).ToArray();
                Fuzz.Expect(joined.AsSpan().SequenceEqual(all), () => $"the Raw server handed out {joined.Length} bytes, expected {all.Length}");
                Fuzz.Expect(messages.All(m => m.Size <= c.Max && m.Format == MessageFormat.Bytes), () => $"a Raw message over {c.Max} bytes");
            }
            else
            {
                Fuzz.Expect(busy ? messages.Count <= expected.Count : messages.Count == expected.Count,
                    () => $"the server handed out {messages.Count} messages, the stream holds {expected.Count} (faults: {string.Join(", ", faults.Select(f => f.Kind))})");
                for (int i = 0; i < messages.Count; i++)
                {
                    int index = i;
                    Fuzz.Expect(messages[i].Payload.AsSpan().SequenceEqual(expected[i]),
                        () => $"message {index} is {Fuzz.Hex(messages[index].Payload)}, expected {Fuzz.Hex(expected[index])}");
                }
            }
            Fuzz.Expect(budget.Used == 0, () => $"{budget.Used} bytes of the server's receive budget were never given back (faults: {string.Join(", ", faults.Select(f => f.Kind))})");
        }

        /// <summary>What the server should hand out for this stream (docs/protocol.md 2-5 and 11).</summary>
        private static List<byte[]> Expected(Case c)
        {
            var messages = new List<byte[]>();
            byte[] s = c.Stream;
            if (s.Length >= 4 && new[] { "GET ", "POST", "HTTP", "PUT ", "HEAD", "OPTI", "DELE", "PATC", "CONN" }.Any(p => s.AsSpan(0, 4).SequenceEqual(System.Text.Encoding.ASCII.GetBytes(p))))
            {
                return messages; // HTTP: closed without a byte
            }
            switch (c.Framing)
            {
                case SocketFraming.Raw:
                    messages.Add(s);
                    return messages;
                case SocketFraming.Line:
                    int max = Math.Max(1, c.Max), start = 0;
                    for (int i = 0; i <= s.Length; i++)
                    {
                        bool end = i == s.Length;
                        if (!end && s[i] != (byte)'\n') continue;
                        int length = i - start;
                        if (length > max) break;
                        if (!end || length > 0)
                        {
                            if (length > 0 && s[i - 1] == (byte)'\r') length--;
                            messages.Add(s.AsSpan(start, length).ToArray());
                        }
                        start = i + 1;
                    }
                    return messages;
            }
            FrameModel.Result model = FrameModel.Parse(s, c.Max, requireHelloFirst: true);
            bool open = false;
            foreach (var (type, payload) in model.Frames)
            {
                if (!open)
                {
                    Hello? hello = type == FrameType.Hello ? Hello.TryParse(payload) : null;
                    if (hello == null || hello.Version != Hello.CurrentVersion) break;
                    open = true;
                    continue;
                }
                if (FrameTypes.IsCorrelated(type))
                {
                    // Section 4: a Request is a message after its 5-byte prefix; a server makes no requests, so every
                    // well-formed Reply is dropped. A short one, id 0 in a Request, or a type that is not a message ends it.
                    if (payload.Length < 5) break;
                    byte inner = payload[4];
                    bool error = type == FrameType.Reply && inner == 0x03;
                    if (!error && !FrameModel.IsData(inner)) break;
                    if (type == FrameType.Reply) continue;
                    if (BitConverter.ToUInt32(payload, 0) == 0) break;
                    messages.Add(payload.AsSpan(5).ToArray());
                    continue;
                }
                if (!FrameTypes.IsData(type)) break; // Goodbye, Error, a second Hello: the end
                messages.Add(payload);
            }
            return messages;
        }

        private (SocketServerChannel, ReceiveBudget) ServerFor(SocketFraming framing, int max, long budgetLimit)
        {
            if (!_servers.TryGetValue((framing, max, budgetLimit), out var entry))
            {
                var budget = new ReceiveBudget(budgetLimit);
                string path = Path.Combine(Path.GetTempPath(), $"psipc-fuzz-{Environment.ProcessId}-{Interlocked.Increment(ref s_next)}.sock");
                var options = new ChannelOptions { MaxMessageSize = max, ReceiveBudget = budget };
                entry = (SocketServerChannel.ListenUnix(null, path, framing, 1000, options), budget);
                _servers.Add((framing, max, budgetLimit), entry);
            }
            return entry;
        }

        public void Dispose()
        {
            foreach (var (server, _) in _servers.Values) server.Close(Deadline.After(TimeSpan.FromSeconds(5)));
        }
    }
}
