using System;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using PsIpc.Transport.Platform;

namespace PsIpc.Transport.Pipes
{
    /// <summary>A connected pipe: the stream, and its socket where there is one (Unix).</summary>
    internal readonly struct PipeStreamPair
    {
        public PipeStreamPair(Stream stream, Socket? socket)
        {
            Stream = stream;
            Socket = socket;
        }

        public Stream Stream { get; }
        /// <summary>The socket under the stream; null for a Windows named pipe.</summary>
        public Socket? Socket { get; }
    }

    /// <summary>The listening end of a pipe. Accept blocks until a client arrives or the listener is disposed.</summary>
    internal interface IPipeListener : IDisposable
    {
        /// <exception cref="IpcException">AccessDenied for a refused client; the listener goes on.</exception>
        /// <exception cref="ObjectDisposedException">The listener was disposed.</exception>
        PipeStreamPair Accept();
    }

    /// <summary>Chooses the platform's pipe implementation.</summary>
    internal static class PipeEndpoints
    {
        public static IPipeListener Listen(PipeName name) =>
            UnixNative.IsWindows ? (IPipeListener)new WindowsPipeListener(name) : new UnixPipeListener(name);

        public static PipeStreamPair Connect(PipeName name, Deadline deadline, CancellationToken cancellationToken) =>
            UnixNative.IsWindows
                ? WindowsPipeConnector.Connect(name, deadline, cancellationToken)
                : UnixPipeConnector.Connect(name, deadline, cancellationToken);

        /// <summary>
        /// A connected pipe as a message connection takes it: both ends checked to run as this user (SO_PEERCRED
        /// on Unix, CurrentUserOnly on Windows) before it gets here.
        /// </summary>
        public static Connections.ConnectedStream Describe(PipeStreamPair pair, PipeName name) =>
            new Connections.ConnectedStream(pair.Stream, pair.Socket,
                new Connections.PeerIdentity(name.Path, UnixNative.IsWindows ? (uint?)null : UnixNative.EffectiveUserId, true,
                    Connections.PeerAuthentication.SameUser));
    }
}
