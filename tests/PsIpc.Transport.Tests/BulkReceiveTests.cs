using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>
    /// Large payloads (issue 12, item 3): one array per message at its exact length, staged in chunks until enough
    /// has arrived; ReceiveInto/ReceiveTo into the caller's buffer or stream, with their errors.
    /// </summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public class BulkReceiveTests
    {
        private const int MiB = 1024 * 1024;

        private static byte[] Random(int length, int seed)
        {
            var bytes = new byte[length];
            new Random(seed).NextBytes(bytes);
            return bytes;
        }

        private static PipeServerChannel Server(Cleanup cleanup, string name, ChannelOptions? options = null) =>
            cleanup.Add(new PipeServerChannel(name, 1, options));

        private static PipeClientChannel Client(Cleanup cleanup, string name) =>
            cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None));

        private static void Send(IpcChannel channel, byte[] payload) =>
            channel.Send(MessageFormat.Bytes, payload, Wire.PatientDeadline(), CancellationToken.None);

        [Theory]
        [InlineData(false, 1000)]
        [InlineData(true, 1000)]
        [InlineData(true, 65536)]
        [InlineData(false, 200_000)]
        public void LargeFrameArrivesInOneArrayOfItsExactLengthWhateverTheSplit(bool budgeted, int chunk)
        {
            byte[] payload = Random(3 * MiB + 7, 1);
            byte[] stream = Wire.Concat(Wire.Frame(FrameType.Bytes, payload), Wire.Frame(FrameType.Text, Wire.Text("next")));
            var budget = budgeted ? new ReceiveBudget(64 * MiB) : null;
            var parser = new FrameParser(4 * MiB) { Budget = budget };
            var frames = new List<Frame>();
            for (int at = 0; at < stream.Length; at += chunk)
            {
                parser.Feed(stream, at, Math.Min(chunk, stream.Length - at), frames);
                // Never more than the announced length, and with a budget every held byte counted.
                Assert.True(parser.PayloadCapacity <= parser.AnnouncedLength, $"{parser.PayloadCapacity} bytes held for a {parser.AnnouncedLength}-byte payload");
                if (budget != null && frames.Count == 0) Assert.Equal(parser.PayloadCapacity, budget.Used);
            }
            Assert.Equal(2, frames.Count);
            Assert.Equal(payload.Length, frames[0].Payload.Length);
            Assert.True(payload.AsSpan().SequenceEqual(frames[0].Payload));
            Assert.Equal("next", System.Text.Encoding.UTF8.GetString(frames[1].Payload));
            if (budget != null)
            {
                Assert.Equal(payload.Length, frames[0].BudgetHeld);
                foreach (Frame f in frames) budget.Release(f.BudgetHeld);
                Assert.Equal(0, budget.Used);
            }
        }

        [Fact]
        public void StagedPayloadIsAllocatedOnlyOnceTwiceWhatArrivedCoversIt()
        {
            // A header alone holds nothing; the payload's own array comes when 2 x arrived + 64 KiB reaches its length.
            var budget = new ReceiveBudget(64 * MiB);
            var parser = new FrameParser(4 * MiB) { Budget = budget };
            var frames = new List<Frame>();
            byte[] header = Wire.Header(MiB, (byte)FrameType.Bytes);
            parser.Feed(header, 0, header.Length, frames);
            Assert.True(parser.IsMidFrame);
            Assert.Equal(0, parser.PayloadCapacity);
            Assert.Equal(0, budget.Used);

            byte[] part = new byte[64 * 1024];
            int fed = 0;
            while (2L * fed + FrameParser.BudgetedStep < MiB)
            {
                Assert.True(parser.PayloadCapacity < MiB, $"the whole array was taken after {fed} bytes");
                parser.Feed(part, 0, part.Length, frames);
                fed += part.Length;
            }
            // The bytes being fed count as arrived: the last chunk above brought the array.
            Assert.Equal(MiB, parser.PayloadCapacity);
            Assert.Equal(MiB, budget.Used);
            parser.ReleaseBudget();
            Assert.Equal(0, budget.Used);
        }

        [Fact]
        public void BytesWaitingInTheSocketCountAsArrived()
        {
            var parser = new FrameParser(4 * MiB) { Budget = new ReceiveBudget(64 * MiB), PendingBytes = () => MiB };
            var frames = new List<Frame>();
            byte[] header = Wire.Header(MiB, (byte)FrameType.Bytes);
            parser.Feed(header, 0, header.Length, frames);
            ArraySegment<byte> target = parser.DirectTarget(64 * 1024);
            Assert.Equal(MiB, parser.PayloadCapacity);
            Assert.Equal(MiB, target.Count); // the whole payload is read straight into its array
        }

        [Fact]
        public void ArraysComeBackOnlyWhenThePoolMadeThem()
        {
            const int length = 100_003; // a length no other test uses
            byte[] rented = PayloadArrays.Rent(length);
            Assert.Equal(length, rented.Length);
            PayloadArrays.Return(rented);
            Assert.Same(rented, PayloadArrays.Rent(length));

            var foreign = new byte[length];
            PayloadArrays.Return(foreign); // a caller's array is never handed out again
            Assert.NotSame(foreign, PayloadArrays.Rent(length));
        }

        [Fact]
        public void ReceiveIntoCopiesEachMessageIntoTheCallersBufferInOrder()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);
            byte[] big = Random(MiB, 2), small = Wire.Text("small");
            Send(client, big);
            Send(client, small);
            Send(client, Array.Empty<byte>());
            Send(client, big);
            client.Close(Wire.PatientDeadline());

            var buffer = new byte[2 * MiB];
            Assert.Equal(MiB, server.ReceiveInto(buffer, 0, buffer.Length, Wire.PatientDeadline(), CancellationToken.None));
            Assert.True(big.AsSpan().SequenceEqual(buffer.AsSpan(0, MiB)));
            Assert.Equal(small.Length, server.ReceiveInto(buffer, 10, 100, Wire.PatientDeadline(), CancellationToken.None));
            Assert.True(small.AsSpan().SequenceEqual(buffer.AsSpan(10, small.Length)));
            Assert.Equal(0, server.ReceiveInto(buffer, 0, 0, Wire.PatientDeadline(), CancellationToken.None));
            var stream = new MemoryStream();
            Assert.Equal(MiB, server.ReceiveTo(stream, Wire.PatientDeadline(), CancellationToken.None));
            Assert.True(big.AsSpan().SequenceEqual(stream.ToArray()));
            Assert.Equal(-1, server.ReceiveInto(buffer, 0, buffer.Length, Wire.PatientDeadline(), CancellationToken.None));
            Assert.Equal(4, server.MessagesReceived);
        }

        [Fact]
        public void MessageLongerThanTheBufferIsBufferTooSmallAndStaysInTheChannel()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);
            byte[] big = Random(200_000, 3);
            Send(client, big);

            var buffer = new byte[199_999];
            IpcException e = Assert.Throws<IpcException>(() => server.ReceiveInto(buffer, 0, buffer.Length, Wire.PatientDeadline(), CancellationToken.None));
            Assert.Equal(IpcErrorKind.BufferTooSmall, e.Kind);
            Assert.Equal(name, e.Target);
            Assert.Contains("200000 bytes", e.Message);
            Assert.True(big.AsSpan().SequenceEqual(Rx.NextMessage(server).Payload)); // nothing was lost
            Assert.Throws<ArgumentOutOfRangeException>(() => server.ReceiveInto(buffer, 10, buffer.Length, Deadline.After(TimeSpan.Zero), CancellationToken.None));
        }

        [Fact]
        public void NothingThereIsReceiveTimeoutOrFalseAndAClosedChannelIsChannelClosed()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Client(cleanup, name);
            var buffer = new byte[16];
            Assert.False(server.TryReceiveInto(buffer, 0, 16, Deadline.After(TimeSpan.Zero), CancellationToken.None, out _));
            IpcException timeout = Assert.Throws<IpcException>(() => server.ReceiveTo(new MemoryStream(), Deadline.After(TimeSpan.FromMilliseconds(50)), CancellationToken.None));
            Assert.Equal(IpcErrorKind.ReceiveTimeout, timeout.Kind);
            using (var stop = new CancellationTokenSource())
            {
                stop.Cancel();
                Assert.ThrowsAny<OperationCanceledException>(() => server.ReceiveInto(buffer, 0, 16, Wire.PatientDeadline(), stop.Token));
            }
            server.Close(Wire.PatientDeadline());
            IpcException closed = Assert.Throws<IpcException>(() => server.ReceiveInto(buffer, 0, 16, Wire.PatientDeadline(), CancellationToken.None));
            Assert.Equal(IpcErrorKind.ChannelClosed, closed.Kind);
        }

        [Fact]
        public void PeerThatDiesInTheMiddleOfALargeMessageIsPeerDisconnectedAfterTheMessagesBefore()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            Socket raw = cleanup.Add(Wire.RawConnect(name));
            Wire.SendAll(raw, Wire.HelloFrame());
            Assert.Equal(FrameType.Hello, Wire.ReadFrame(raw).Type);
            byte[] whole = Wire.Frame(FrameType.Bytes, Random(MiB, 4));
            Wire.SendAll(raw, Wire.Concat(Wire.Frame(FrameType.Text, Wire.Text("before")), whole[..(FrameHeader.Size + 600_000)]));
            raw.Shutdown(SocketShutdown.Both);
            raw.Dispose();

            var buffer = new byte[2 * MiB];
            Assert.Equal(6, server.ReceiveInto(buffer, 0, buffer.Length, Wire.PatientDeadline(), CancellationToken.None));
            IpcException fault = Assert.Throws<IpcException>(() => server.ReceiveInto(buffer, 0, buffer.Length, Wire.PatientDeadline(), CancellationToken.None));
            Assert.Equal(IpcErrorKind.PeerDisconnected, fault.Kind);
            Assert.Contains("600005 bytes", fault.Message);
            Assert.Equal(-1, server.ReceiveInto(buffer, 0, buffer.Length, Wire.PatientDeadline(), CancellationToken.None));
        }

        [Fact]
        public void OversizedFrameIsMessageTooLargeBeforeAnythingIsHeld()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            var options = new ChannelOptions { MaxMessageSize = MiB };
            PipeServerChannel server = Server(cleanup, name, options);
            Socket raw = cleanup.Add(Wire.RawConnect(name));
            Wire.SendAll(raw, Wire.Concat(Wire.HelloFrame(), Wire.Header(MiB + 1, (byte)FrameType.Bytes)));

            IpcException fault = Assert.Throws<IpcException>(() => server.ReceiveTo(new MemoryStream(), Wire.PatientDeadline(), CancellationToken.None));
            Assert.Equal(IpcErrorKind.MessageTooLarge, fault.Kind);
            Assert.Equal(0, options.ReceiveBudget?.Used ?? 0);
        }

        [Fact]
        public void DestinationThatFailsGetsItsErrorAndTheMessageStaysInTheChannel()
        {
            using var cleanup = new Cleanup();
            string name = Wire.UniqueName();
            PipeServerChannel server = Server(cleanup, name);
            PipeClientChannel client = Client(cleanup, name);
            byte[] big = Random(300_000, 5);
            Send(client, big);

            Assert.Throws<ArgumentException>(() => server.ReceiveTo(new MemoryStream(new byte[10], writable: false), Wire.PatientDeadline(), CancellationToken.None));
            Assert.Throws<NotSupportedException>(() => server.ReceiveTo(new MemoryStream(new byte[10], 0, 10, true, false), Wire.PatientDeadline(), CancellationToken.None));
            Assert.True(big.AsSpan().SequenceEqual(Rx.NextMessage(server).Payload));
        }
    }
}
