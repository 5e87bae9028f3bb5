using System;
using System.Collections.Generic;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport;
using PsIpc.Transport.Channels;
using PsIpc.Transport.Framing;
using PsIpc.Transport.Pipes;
using Xunit;

namespace PsIpc.Transport.Tests
{
    /// <summary>Builds frames and pipe names, and talks raw bytes to a pipe socket (a peer that misbehaves).</summary>
    internal static class Wire
    {
        /// <summary>How long a test waits for something that should happen at once before it gives up.
        /// A safety net against hangs, never an assertion about speed.</summary>
        public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

        public static Deadline PatientDeadline() => Deadline.After(Patience);

        public static string UniqueName() => "t" + Guid.NewGuid().ToString("N").Substring(0, 16);

        public static string SocketPath(string pipeName) => PipeName.Parse(pipeName).Path;

        public static byte[] Frame(FrameType type, byte[] payload)
        {
            var frame = new byte[FrameHeader.Size + payload.Length];
            FrameHeader.Write(frame, 0, payload.Length, type);
            Buffer.BlockCopy(payload, 0, frame, FrameHeader.Size, payload.Length);
            return frame;
        }

        public static byte[] Header(uint length, byte type)
        {
            var header = new byte[FrameHeader.Size];
            header[0] = (byte)length;
            header[1] = (byte)(length >> 8);
            header[2] = (byte)(length >> 16);
            header[3] = (byte)(length >> 24);
            header[4] = type;
            return header;
        }

        public static byte[] HelloFrame(byte version = Hello.CurrentVersion, int maxMessageSize = FrameHeader.DefaultMaxMessageSize) =>
            Frame(FrameType.Hello, new Hello(version, Environment.ProcessId, maxMessageSize).ToPayload());

        public static byte[] Concat(params byte[][] parts)
        {
            int total = 0;
            foreach (byte[] p in parts) total += p.Length;
            var all = new byte[total];
            int at = 0;
            foreach (byte[] p in parts)
            {
                Buffer.BlockCopy(p, 0, all, at, p.Length);
                at += p.Length;
            }
            return all;
        }

        public static byte[] Text(string s) => IpcMessage.EncodeText(s);

        public static Socket RawConnect(string pipeName)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                socket.ReceiveTimeout = (int)Patience.TotalMilliseconds;
                socket.SendTimeout = (int)Patience.TotalMilliseconds;
                socket.Connect(new UnixDomainSocketEndPoint(SocketPath(pipeName)));
                return socket;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        public static void SendAll(Socket socket, byte[] bytes)
        {
            int sent = 0;
            while (sent < bytes.Length) sent += socket.Send(bytes, sent, bytes.Length - sent, SocketFlags.None);
        }

        /// <summary>Reads exactly <paramref name="count"/> bytes; fails the test on EOF or on the socket's receive timeout.</summary>
        public static byte[] ReadExactly(Socket socket, int count)
        {
            var buffer = new byte[count];
            int got = 0;
            while (got < count)
            {
                int n = socket.Receive(buffer, got, count - got, SocketFlags.None);
                if (n == 0) throw new Xunit.Sdk.XunitException($"EOF after {got} of {count} bytes.");
                got += n;
            }
            return buffer;
        }

        /// <summary>Reads one whole frame from a raw socket.</summary>
        public static Frame ReadFrame(Socket socket)
        {
            byte[] header = ReadExactly(socket, FrameHeader.Size);
            uint length = FrameHeader.ReadLength(header, 0);
            byte[] payload = length == 0 ? Array.Empty<byte>() : ReadExactly(socket, checked((int)length));
            return new Frame((FrameType)header[4], payload);
        }

        /// <summary>True when the peer closed (read returns 0) before the socket's receive timeout; discards data.</summary>
        public static bool ReadsToEof(Socket socket)
        {
            var buffer = new byte[4096];
            try
            {
                while (true)
                {
                    if (socket.Receive(buffer) == 0) return true;
                }
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut || e.SocketErrorCode == SocketError.WouldBlock)
            {
                return false;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                return true;
            }
        }
    }

    /// <summary>Receiving with a safety net: every wait is bounded, so a broken channel fails a test instead of hanging it.</summary>
    internal static class Rx
    {
        /// <summary>Takes the next item (message or fault); fails when none arrives in time or the channel ended.</summary>
        public static IpcMessage Next(IpcChannel channel)
        {
            var into = new List<IpcMessage>(1);
            int n = channel.Receive(into, 1, Wire.PatientDeadline(), CancellationToken.None);
            Assert.True(n == 1, $"expected an item from '{channel.Name}', Receive returned {n}");
            return into[0];
        }

        public static IpcMessage NextMessage(IpcChannel channel)
        {
            IpcMessage m = Next(channel);
            Assert.True(m.Fault == null, $"expected a message, got fault {m.Fault?.Kind}: {m.Fault?.Message}");
            return m;
        }

        public static IpcException NextFault(IpcChannel channel)
        {
            IpcMessage m = Next(channel);
            Assert.True(m.Fault != null, $"expected a fault, got a {m.Format} message of {m.Size} bytes");
            return m.Fault;
        }

        /// <summary>Receive's result once the channel has nothing more: must be -1 (ended), not 0 (timeout).</summary>
        public static void AssertEnded(IpcChannel channel)
        {
            var into = new List<IpcMessage>();
            int n = channel.Receive(into, 16, Wire.PatientDeadline(), CancellationToken.None);
            Assert.True(n == -1, $"expected the end of '{channel.Name}' (-1), got {n}" +
                (into.Count > 0 ? $" (first: {(into[0].Fault != null ? "fault " + into[0].Fault?.Kind : "message " + into[0].Size + " bytes")})" : ""));
        }
    }

    /// <summary>PsIpc pipe channels with the default framing and options, closed by the test's <see cref="Cleanup"/>.</summary>
    internal static class TestPipes
    {
        public static PipeServerChannel Server(Cleanup cleanup, string name, int maxClients = int.MaxValue) =>
            cleanup.Add(new PipeServerChannel(name, maxClients, null));

        public static PipeClientChannel Client(Cleanup cleanup, string name) =>
            cleanup.Add(PipeClientChannel.Connect(name, Wire.PatientDeadline(), CancellationToken.None));
    }

    /// <summary>Closes what a test opened, last first, without letting a stuck close hang the run.</summary>
    internal sealed class Cleanup : IDisposable
    {
        private readonly List<IDisposable> _items = new List<IDisposable>();

        public T Add<T>(T item) where T : IDisposable
        {
            _items.Add(item);
            return item;
        }

        public void Dispose()
        {
            for (int i = _items.Count - 1; i >= 0; i--)
            {
                try
                {
                    if (_items[i] is IpcChannel channel) channel.Close(Deadline.After(TimeSpan.FromSeconds(2)));
                    else _items[i].Dispose();
                }
                catch (Exception)
                {
                    // cleanup is best effort; the test's own assertions decide the outcome
                }
            }
        }
    }
}

namespace PsIpc.Transport.Tests
{
    /// <summary>Runs a blocking call on its own thread (not the pool, which the blocking calls would starve).</summary>
    internal static class Background
    {
        public static System.Threading.Tasks.Task<T> Run<T>(Func<T> call) =>
            System.Threading.Tasks.Task.Factory.StartNew(call, CancellationToken.None,
                System.Threading.Tasks.TaskCreationOptions.LongRunning, System.Threading.Tasks.TaskScheduler.Default);

        public static System.Threading.Tasks.Task Run(Action call) =>
            System.Threading.Tasks.Task.Factory.StartNew(call, CancellationToken.None,
                System.Threading.Tasks.TaskCreationOptions.LongRunning, System.Threading.Tasks.TaskScheduler.Default);

        /// <summary>A blocked call cannot complete before the test releases it, so "not done yet" is a safe check
        /// whatever the scheduling; how long we look only limits how often a bug would be caught.</summary>
        public static async System.Threading.Tasks.Task AssertStillBlocked(System.Threading.Tasks.Task task)
        {
            await System.Threading.Tasks.Task.WhenAny(task, System.Threading.Tasks.Task.Delay(100));
            Assert.False(task.IsCompleted, "the call should still be waiting" +
                (task.IsFaulted ? ", but it threw " + task.Exception.InnerException : ""));
        }

        public static async System.Threading.Tasks.Task<T> Finishes<T>(System.Threading.Tasks.Task<T> task)
        {
            await System.Threading.Tasks.Task.WhenAny(task, System.Threading.Tasks.Task.Delay(Wire.Patience));
            Assert.True(task.IsCompleted, "the call should have been released");
            return await task;
        }
    }
}
