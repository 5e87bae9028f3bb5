using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using CsCheck;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.SharedMemory;
using Xunit;
using Xunit.Abstractions;

namespace PsIpc.Fuzz.Tests
{
    /// <summary>
    /// Shared-memory segment and queue files (SharedMemory/SegmentHeader.cs, SharedRing.cs, SharedMemoryQueue.cs,
    /// docs/protocol.md "Shared memory") whose header and data area another process of the user wrote: valid ones,
    /// valid ones with fields set to boundary values, and bytes mutated anywhere, written as a real segment file under
    /// /dev/shm (a directory of this run, through PSIPC_SHM_DIR), then listed (Get-SharedMemory), opened, read,
    /// written, sent to and received from, truncated under the mapping, closed. Nothing may crash the process (the
    /// input in flight is kept in output/fuzz-findings/&lt;target&gt;/crash-candidate.bin), throw anything but a
    /// documented error, allocate more than the segment holds, hang past a deadline, or leave a queue inconsistent after
    /// a call that succeeded; an untouched file round-trips what the model says.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public sealed class SharedMemoryFuzzTests : IDisposable
    {
        public const string SegmentTarget = "segment-header";
        public const string QueueTarget = "queue-header";

        private const int HeaderSize = 128;
        private const long MaxPosition = 1L << 62; // docs/protocol.md: the largest head or tail of a consistent ring

        private static readonly IpcErrorKind[] Documented =
        {
            IpcErrorKind.SharedMemoryCorrupt, IpcErrorKind.SharedMemoryDamaged, IpcErrorKind.SharedMemoryTruncated,
            IpcErrorKind.SharedMemoryLockTimeout, IpcErrorKind.SendTimeout, IpcErrorKind.ReceiveTimeout,
            IpcErrorKind.MessageTooLarge, IpcErrorKind.SharedMemoryTooLarge,
        };

        private static readonly TimeSpan CallTimeout = TimeSpan.FromMilliseconds(20);

        private readonly ITestOutputHelper _output;
        private readonly string? _previousDirectory;
        private readonly string _directory;
        private int _next;

        public SharedMemoryFuzzTests(ITestOutputHelper output)
        {
            _output = output;
            _previousDirectory = Environment.GetEnvironmentVariable("PSIPC_SHM_DIR");
            string root = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
            _directory = Path.Combine(root, $"psipc-fuzz-{Environment.ProcessId}");
            Environment.SetEnvironmentVariable("PSIPC_SHM_DIR", _directory);
        }

        public void Dispose()
        {
            try { Directory.Delete(_directory, recursive: true); } catch (DirectoryNotFoundException) { }
            Environment.SetEnvironmentVariable("PSIPC_SHM_DIR", _previousDirectory);
        }

        // ---- the cases ----

        public enum Op { Info, Send, SendMany, Receive, Return, Count, ReadValue, WriteValue, ReadBytes, WriteBytes, Truncate }

        public readonly record struct Call(Op Op, int A, int B, long C)
        {
            public override string ToString() => $"{Op}({A},{B},{C})";
        }

        /// <param name="File">The segment file as written: header, then data area.</param>
        /// <param name="Model">What the untouched file holds (null once anything was mutated).</param>
        public sealed record Case(byte[] File, Call[] Calls, Model? Model)
        {
            public override string ToString() =>
                $"{(Model == null ? "mutated" : "untouched")} file of {File.Length} bytes, header {Fuzz.Hex(File.AsSpan(0, Math.Min(HeaderSize, File.Length)).ToArray(), HeaderSize)}; calls {string.Join(" ", Calls)}";
        }

        /// <summary>The content of an untouched file: the queue's records, or the segment's data area and value.</summary>
        public sealed record Model(long Capacity, List<(MessageFormat Format, byte[] Payload)> Records, byte[] Data, uint ValueFormat, long ValueLength, long Position);

        // (offset, size) of every header field, common part then kind-specific part (docs/protocol.md).
        private static readonly (int Offset, int Size)[] CommonFields = { (0, 8), (8, 4), (12, 4), (16, 4), (20, 4), (24, 8), (32, 8), (40, 4), (44, 4), (48, 4), (52, 4), (56, 8) };
        private static readonly (int Offset, int Size)[] QueueFields = { (64, 8), (72, 8), (80, 4), (84, 4), (88, 4), (92, 4), (96, 8), (104, 8), (112, 4), (116, 4) };
        private static readonly (int Offset, int Size)[] SegmentFields = { (64, 8), (72, 4), (80, 8), (88, 8) };

        public readonly record struct FieldEdit(int Field, bool FromOther, int Other, long Value);

        private static readonly Gen<long> Capacities = Gen.Frequency((3, Gen.OneOf(64L, 72L, 128L, 4096L)), (1, Gen.Long[8, 1024].Select(n => n * 8)));

        /// <summary>Where an untouched ring starts: near 0, anywhere, or at a boundary value (aligned, as a ring's positions are).</summary>
        private static readonly Gen<long> Positions = Gen.Frequency(
            (4, Gen.Long[0, 64].Select(n => n * 8)),
            (2, Gen.Long[0, long.MaxValue].Select(n => n & ~7L)),
            (3, Streams.Value.Select(v => Math.Abs(v == long.MinValue ? 0 : v) & ~7L)));

        private static readonly Gen<(MessageFormat, byte[])> Records = Gen.Select(FrameModel.DataType, Gen.Byte.Array[0, 40], (t, p) => ((MessageFormat)t, p));

        // Truncation is rare: after it every call is the same SharedMemoryTruncated.
        private static readonly Gen<Op> Ops = Gen.Frequency(
            (3, Gen.OneOf(Op.Send, Op.SendMany, Op.Receive, Op.ReadValue, Op.WriteValue, Op.ReadBytes, Op.WriteBytes)),
            (1, Gen.OneOf(Op.Info, Op.Return, Op.Count)),
            (1, Gen.Frequency((1, Gen.Const(Op.Truncate)), (9, Gen.OneOf(Op.Receive, Op.Send)))));

        private static readonly Gen<Call> Calls = Gen.Select(Ops, Gen.Int[0, 5000], Gen.Int[0, 24], Streams.Value, (op, a, b, c) => new Call(op, a, b, c));

        private static Gen<Case> CasesFor(string target, bool queue)
        {
            Gen<(byte[] File, Model Model)> untouched = queue
                ? Gen.Select(Capacities, Positions, Records.Array[0, 12], Gen.Int, (cap, position, records, pid) => QueueFile(cap, position, records, pid))
                : Gen.Select(Capacities, Records, Gen.Long[0, 100], Gen.Int, (cap, value, writes, pid) => SegmentFile(cap, value, writes, pid));
            (int, int)[] fields = CommonFields.Concat(queue ? QueueFields : SegmentFields).ToArray();
            // Mostly fields that the opening checks do not judge (the kind-specific part, flags, lock words, creator,
            // creation time): those reach the code behind the checks. Sometimes any field.
            int firstUnchecked = Array.IndexOf(fields, (20, 4));
            var unchecked_ = Enumerable.Range(0, fields.Length).Where(i => i >= firstUnchecked && fields[i] != (24, 8) && fields[i] != (32, 8)).ToArray();
            Gen<int> fieldIndexes = Gen.Frequency((3, Gen.OneOf(unchecked_)), (1, Gen.Int[0, fields.Length - 1]));
            Gen<FieldEdit> edits = Gen.Select(fieldIndexes, Gen.Int[0, 5], Gen.Int[0, fields.Length - 1], Streams.Value,
                (f, from, other, value) => new FieldEdit(f, from == 0, other, value));
            IReadOnlyList<byte[]> seeds = Corpus.Seeds(target);
            Gen<(byte[], Model?)> files = Gen.Frequency(
                (3, untouched.Select(u => (u.File, (Model?)u.Model))),
                (6, Gen.Select(untouched, edits.Array[1, 4], (u, e) => (Edit(u.File, fields, e), (Model?)null))),
                (2, Gen.Select(untouched, Streams.AnyMutation.Array[1, 6], (u, m) => (Streams.Apply(u.File, u.File, m), (Model?)null))),
                (2, Streams.Mutated(seeds).Select(b => (b, (Model?)null))));
            return Gen.Select(files, Calls.Array[1, 12], (f, calls) => new Case(Prompt(f.Item1), calls, f.Item2));
        }

        /// <summary>
        /// A file shorter than the header, or with a zero magic, is a segment still being created: Open waits 2 s for
        /// its creator. The corpus has such files; generated ones get the magic and the header's length, so that the
        /// time goes to headers that open.
        /// </summary>
        private static byte[] Prompt(byte[] file)
        {
            if (file.Length >= HeaderSize && BitConverter.ToUInt64(file, 0) != 0) return file;
            var b = new byte[Math.Max(file.Length, HeaderSize + 64)];
            file.CopyTo(b, 0);
            if (BitConverter.ToUInt64(b, 0) == 0) BitConverter.GetBytes(0x4D48534350495350UL).CopyTo(b, 0);
            return b;
        }

        private static byte[] Header(long capacity, int kind, int pid)
        {
            var b = new byte[HeaderSize + capacity];
            BitConverter.GetBytes(0x4D48534350495350UL).CopyTo(b, 0);
            BitConverter.GetBytes(2).CopyTo(b, 8);
            BitConverter.GetBytes(HeaderSize).CopyTo(b, 12);
            BitConverter.GetBytes(kind).CopyTo(b, 16);
            BitConverter.GetBytes(capacity).CopyTo(b, 24);
            BitConverter.GetBytes(HeaderSize + capacity).CopyTo(b, 32);
            BitConverter.GetBytes(pid).CopyTo(b, 52);
            BitConverter.GetBytes(1_700_000_000_000L).CopyTo(b, 56);
            return b;
        }

        private static long RecordSize(long length) => 8 + ((length + 7) & ~7L);

        internal static (byte[], Model) QueueFile(long capacity, long position, (MessageFormat Format, byte[] Payload)[] records, int pid)
        {
            byte[] file = Header(capacity, 2, pid);
            var kept = new List<(MessageFormat, byte[])>();
            long tail = position;
            foreach (var (format, payload) in records)
            {
                if (tail > long.MaxValue - 2 * capacity) break; // a ring this far up is empty (it could not hold more)
                if (tail - position + RecordSize(payload.Length) > capacity) break;
                long at = tail % capacity;
                BitConverter.GetBytes((uint)payload.Length).CopyTo(file, HeaderSize + at);
                file[HeaderSize + at + 4] = (byte)format;
                long p = at + 8 == capacity ? 0 : at + 8;
                for (int i = 0; i < payload.Length; i++) file[HeaderSize + (p + i) % capacity] = payload[i];
                tail += RecordSize(payload.Length);
                kept.Add((format, payload));
            }
            BitConverter.GetBytes(position).CopyTo(file, 64);
            BitConverter.GetBytes(tail).CopyTo(file, 72);
            BitConverter.GetBytes((long)kept.Count).CopyTo(file, 96);
            return (file, new Model(capacity, kept, Array.Empty<byte>(), 0, 0, position));
        }

        internal static (byte[], Model) SegmentFile(long capacity, (MessageFormat Format, byte[] Payload) value, long writes, int pid)
        {
            byte[] file = Header(capacity, 1, pid);
            value.Payload.AsSpan(0, (int)Math.Min(value.Payload.Length, capacity)).CopyTo(file.AsSpan(HeaderSize));
            long length = Math.Min(value.Payload.Length, capacity);
            uint format = writes == 0 ? 0 : (uint)value.Format;
            BitConverter.GetBytes(writes * 2).CopyTo(file, 64);
            BitConverter.GetBytes(format).CopyTo(file, 72);
            BitConverter.GetBytes(format == 0 ? 0 : length).CopyTo(file, 80);
            BitConverter.GetBytes(writes).CopyTo(file, 88);
            return (file, new Model(capacity, new(), file.AsSpan(HeaderSize).ToArray(), format, format == 0 ? 0 : length, 0));
        }

        private static byte[] Edit(byte[] file, (int Offset, int Size)[] fields, FieldEdit[] edits)
        {
            byte[] b = (byte[])file.Clone();
            foreach (FieldEdit e in edits)
            {
                var (offset, size) = fields[e.Field];
                long value = e.Value;
                if (e.FromOther)
                {
                    // Related fields are the dangerous ones (head and tail, capacity and total size): one from another, nudged.
                    var (o, s) = fields[e.Other];
                    value = unchecked((s == 8 ? BitConverter.ToInt64(b, o) : BitConverter.ToInt32(b, o)) + e.Value % 65);
                }
                for (int i = 0; i < size; i++) b[offset + i] = (byte)(value >> (8 * i));
            }
            return b;
        }

        internal static IEnumerable<Case> Replays(byte[] file)
        {
            if (Prompt(file) != file)
            {
                yield return new Case(file, new[] { new Call(Op.Info, 0, 0, 0) }, null); // Open waits 2 s for it: once is enough
                yield break;
            }
            yield return new Case(file, new[] { new Call(Op.Info, 0, 0, 0), new Call(Op.Count, 0, 0, 0), new Call(Op.Receive, 10, 0, 0), new Call(Op.ReadValue, 0, 0, 0),
                new Call(Op.ReadBytes, 0, 0, 64), new Call(Op.Send, 8, 1, 0), new Call(Op.SendMany, 16, 5, 0), new Call(Op.WriteValue, 12, 0, 0),
                new Call(Op.WriteBytes, 3, 5, 0), new Call(Op.Receive, 100, 0, 0), new Call(Op.Return, 0, 0, 0), new Call(Op.Receive, 100, 0, 0) }, null);
            yield return new Case(file, new[] { new Call(Op.SendMany, 8, 20, 0), new Call(Op.Receive, 2, 0, 0), new Call(Op.Return, 0, 1, 0), new Call(Op.Receive, 50, 0, 0) }, null);
            yield return new Case(file, new[] { new Call(Op.Truncate, 0, 0, 100), new Call(Op.Count, 0, 0, 0), new Call(Op.Send, 1, 0, 0), new Call(Op.Receive, 1, 0, 0), new Call(Op.ReadValue, 0, 0, 0), new Call(Op.Info, 0, 0, 0) }, null);
        }

        // ---- the targets ----

        [Fact]
        public void AnySegmentFileIsReadAndWrittenWithDocumentedErrorsOnly()
        {
            Fuzz.Run(SegmentTarget, CasesFor(SegmentTarget, queue: false), Check, c => c.File, c => c.ToString(), _output, threads: 1, crashMarker: true);
        }

        [Fact]
        public void AnyQueueFileIsSentToAndReceivedFromWithDocumentedErrorsAndStaysConsistent()
        {
            Fuzz.Run(QueueTarget, CasesFor(QueueTarget, queue: true), Check, c => c.File, c => c.ToString(), _output, threads: 1, crashMarker: true);
        }

        internal void Check(Case c)
        {
            string name = $"fz-{Interlocked.Increment(ref _next)}";
            // A real segment first: it makes the directory (0700) and the file (0600); then the fuzzed bytes replace its content.
            SharedMemoryChannel.Create(name, 64, queue: false).Close(Deadline.After(Fuzz.Patience));
            string path = SharedMemoryChannel.PathOf(name);
            File.WriteAllBytes(path, c.File);
            try
            {
                Run(c, name, path);
            }
            finally
            {
                try { SharedMemoryChannel.Remove(name); } catch (IpcException) { }
            }
        }

        private static void Run(Case c, string name, string path)
        {
            Info(name);
            SharedMemoryChannel channel;
            try
            {
                channel = SharedMemoryChannel.Open(name);
            }
            catch (Exception e)
            {
                Fuzz.AssertDocumented(e, Documented, "SharedMemoryChannel.Open");
                Fuzz.Outcome($"open: {((IpcException)e).Kind}");
                Fuzz.Expect(c.Model == null, () => $"an untouched file did not open: {e.Message}");
                return;
            }
            var model = c.Model == null || c.Model.Position > MaxPosition - (1L << 41) ? null : new Tracker(c.Model);
            var taken = new List<IpcMessage>();
            bool truncated = false;
            try
            {
                foreach (Call call in c.Calls)
                {
                    try
                    {
                        Do(channel, call, path, ref model, taken, ref truncated);
                        Fuzz.Outcome($"{call.Op}: ok");
                    }
                    catch (Exception e) when (e is not Xunit.Sdk.XunitException)
                    {
                        Fuzz.AssertDocumented(e, Documented, $"{call} on a {channel.SegmentKind}");
                        Fuzz.Outcome($"{call.Op}: {((IpcException)e).Kind}");
                        // An untouched file fails only where the arguments ask too much (or a wait ends).
                        if (model != null && !truncated && e is IpcException { IsTimeout: false, Kind: not (IpcErrorKind.SharedMemoryTooLarge or IpcErrorKind.MessageTooLarge) })
                        {
                            throw new Xunit.Sdk.XunitException($"{call} on an untouched {channel.SegmentKind} failed: {((IpcException)e).Kind}: {e.Message}");
                        }
                    }
                }
            }
            finally
            {
                channel.Close(Deadline.After(Fuzz.Patience)); // must not throw either
            }
            Info(name);
        }

        /// <summary>What the model knows of an untouched file as the calls go.</summary>
        private sealed class Tracker
        {
            public Tracker(Model m)
            {
                Records = new LinkedList<(MessageFormat, byte[])>(m.Records);
                Data = (byte[])m.Data.Clone();
                ValueFormat = m.ValueFormat;
                ValueLength = m.ValueLength;
            }

            public LinkedList<(MessageFormat Format, byte[] Payload)> Records { get; }
            public byte[] Data { get; }
            public uint ValueFormat { get; set; }
            public long ValueLength { get; set; }
        }

        private static byte[] Payload(int length, int seed) => Enumerable.Range(0, length).Select(i => (byte)(seed * 31 + i)).ToArray();

        private static void Do(SharedMemoryChannel channel, Call call, string path, ref Tracker? model, List<IpcMessage> taken, ref bool truncated)
        {
            // Mostly a single poll (a wait on an empty or full ring costs its whole deadline), sometimes a short wait.
            Deadline deadline = Deadline.After(call.B % 5 == 0 ? CallTimeout : TimeSpan.Zero);
            var none = CancellationToken.None;
            long cap = channel.Capacity;
            if (channel is SharedMemoryQueue queue)
            {
                switch (call.Op)
                {
                    case Op.Send:
                    case Op.SendMany:
                    case Op.WriteValue:
                    case Op.WriteBytes:
                    {
                        int count = call.Op == Op.SendMany ? call.B + 1 : 1;
                        int size = (int)(call.A % (call.B % 3 == 0 ? Math.Min(cap, 4096) : Math.Min(cap, 4096) / 8 + 1));
                        var payloads = Enumerable.Range(0, count).Select(i => Payload(size, call.B + i)).ToList();
                        long before = queue.MessagesSent;
                        try
                        {
                            queue.SendMany(MessageFormat.Bytes, payloads, deadline, none);
                        }
                        finally
                        {
                            long sent = queue.MessagesSent - before;
                            for (int i = 0; i < sent; i++) model?.Records.AddLast((MessageFormat.Bytes, payloads[i]));
                            if (sent > 0) RingIsConsistent(path, cap, $"{call} sent {sent}");
                        }
                        break;
                    }
                    case Op.Receive:
                    case Op.ReadValue:
                    case Op.ReadBytes:
                    {
                        var into = new List<IpcMessage>();
                        int n = queue.Receive(into, Math.Max(1, call.A % 64), deadline, none);
                        foreach (IpcMessage m in into)
                        {
                            Fuzz.Expect(m.Size <= cap - 8 && FrameTypes.IsData((FrameType)m.Format), () => $"a {m.Format} message of {m.Size} bytes came out of a {cap}-byte ring");
                            if (model != null)
                            {
                                Fuzz.Expect(model.Records.Count > 0, () => "a message came out of an empty ring");
                                var expected = model.Records.First!.Value;
                                model.Records.RemoveFirst();
                                Fuzz.Expect(expected.Format == m.Format && expected.Payload.AsSpan().SequenceEqual(m.Payload),
                                    () => $"received {m.Format}[{m.Size}], the ring held {expected.Format}[{expected.Payload.Length}]");
                            }
                        }
                        if (n > 0) RingIsConsistent(path, cap, $"{call} took {n}");
                        else if (model != null && !truncated) Fuzz.Expect(model.Records.Count == 0 || n == 0, () => "nothing received from a ring with records");
                        taken.Clear();
                        taken.AddRange(into);
                        break;
                    }
                    case Op.Return:
                    {
                        int start = taken.Count == 0 ? 0 : call.B % taken.Count;
                        queue.ReturnUnreceived(taken, start);
                        if (model != null)
                        {
                            for (int i = taken.Count - 1; i >= start; i--) model.Records.AddFirst((taken[i].Format, taken[i].Payload));
                        }
                        taken.Clear();
                        break;
                    }
                    case Op.Count:
                        _ = queue.Count;
                        _ = queue.UsedBytes;
                        _ = queue.MaxMessageSize;
                        _ = queue.IsDamaged;
                        _ = queue.LockHolder;
                        _ = queue.LockRecoveries;
                        break;
                    case Op.Truncate:
                        Truncate(path, call);
                        truncated = true;
                        model = null; // what the file held is gone (a file that grew back has zeros)
                        break;
                    default:
                        Info(channel.Name);
                        break;
                }
                return;
            }

            var segment = (SharedMemorySegment)channel;
            switch (call.Op)
            {
                case Op.ReadValue:
                case Op.Receive:
                {
                    IpcMessage? value = segment.ReadValue(deadline, none);
                    Fuzz.Expect(value == null || value.Size <= cap, () => $"a {value!.Size}-byte value came out of a {cap}-byte segment");
                    if (model != null)
                    {
                        Fuzz.Expect((value == null) == (model.ValueFormat == 0), () => $"the value is {(value == null ? "missing" : "there")}");
                        if (value != null)
                        {
                            Assert.Equal((MessageFormat)model.ValueFormat, value.Format);
                            Fuzz.Expect(value.Payload.AsSpan().SequenceEqual(model.Data.AsSpan(0, (int)model.ValueLength)), () => "the value read is not the value written");
                        }
                    }
                    break;
                }
                case Op.WriteValue:
                case Op.Send:
                {
                    byte[] payload = Payload(call.A % (int)Math.Min(cap + 2, 5000), call.B);
                    segment.WriteValue(MessageFormat.Json, payload, deadline, none);
                    if (model != null)
                    {
                        payload.CopyTo(model.Data, 0);
                        model.ValueFormat = (uint)MessageFormat.Json;
                        model.ValueLength = payload.Length;
                    }
                    break;
                }
                case Op.ReadBytes:
                {
                    long offset = call.A % (cap + 2), count = (long)((ulong)call.C % (ulong)(cap + 2));
                    byte[] bytes = segment.ReadBytes(offset, count, deadline, none);
                    Fuzz.Expect(bytes.Length == count && offset + count <= cap, () => $"read {bytes.Length} bytes at {offset} of a {cap}-byte segment");
                    if (model != null) Fuzz.Expect(bytes.AsSpan().SequenceEqual(model.Data.AsSpan((int)offset, (int)count)), () => "the bytes read are not the bytes written");
                    break;
                }
                case Op.WriteBytes:
                case Op.SendMany:
                {
                    long offset = call.A % (cap + 2);
                    byte[] bytes = Payload(call.B + (int)((ulong)call.C % 3 * (ulong)cap / 2), call.A);
                    segment.WriteBytes(offset, bytes, deadline, none);
                    Fuzz.Expect(offset + bytes.Length <= cap, () => $"wrote {bytes.Length} bytes at {offset} of a {cap}-byte segment");
                    if (model != null) bytes.CopyTo(model.Data, offset);
                    break;
                }
                case Op.Count:
                case Op.Return:
                    _ = segment.WriteCount;
                    _ = segment.ValueLength;
                    _ = segment.IsDamaged;
                    _ = segment.LockHolder;
                    break;
                case Op.Truncate:
                    Truncate(path, call);
                    truncated = true;
                    model = null;
                    break;
                default:
                    Info(channel.Name);
                    break;
            }
        }

        private static void Truncate(string path, Call call)
        {
            long length = new FileInfo(path).Length;
            long[] choices = { 0, 64, HeaderSize - 1, HeaderSize, length - 8, length - 1, length + 4096 };
            using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
            fs.SetLength(Math.Max(0, choices[call.A % choices.Length]));
        }

        /// <summary>Get-SharedMemory reads every header of the directory: it must describe any of them, never fail on one.</summary>
        private static void Info(string name)
        {
            IReadOnlyList<SharedMemoryInfo> all;
            try
            {
                all = SharedMemoryInfo.List();
            }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"SharedMemoryInfo.List (Get-SharedMemory) threw {e.GetType().Name}: {e.Message}", e);
            }
            Fuzz.Expect(all.Any(i => i.Name == name), () => $"Get-SharedMemory does not list '{name}'");
        }

        /// <summary>After a call that moved the head or tail, the ring must be one docs/protocol.md allows (read from the file, not the mapping).</summary>
        private static void RingIsConsistent(string path, long capacity, string after)
        {
            var header = new byte[80];
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            {
                if (fs.Length < 80) return; // truncated meanwhile: nothing to check
                fs.ReadExactly(header, 0, 80);
            }
            long head = BitConverter.ToInt64(header, 64), tail = BitConverter.ToInt64(header, 72);
            Fuzz.Expect(head >= 0 && tail >= head && tail - head <= capacity && (head & 7) == 0 && (tail & 7) == 0,
                () => $"after {after} the ring has head {head} and tail {tail} in {capacity} bytes: inconsistent (a position overflowed?)");
        }
    }
}
