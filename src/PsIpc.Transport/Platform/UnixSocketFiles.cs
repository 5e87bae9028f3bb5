using System;
using System.IO;
using System.Net.Sockets;

namespace PsIpc.Transport.Platform
{
    /// <summary>Why a Unix socket path could not be bound.</summary>
    internal enum UnixBindFailure
    {
        /// <summary>A live server listens on it.</summary>
        Served,
        /// <summary>Something that is not a socket has the path; it is never deleted.</summary>
        NotASocket,
        /// <summary>A stale socket file that could not be removed, or that another process re-bound first.</summary>
        CannotReplace,
    }

    /// <summary>
    /// Binding a Unix socket path the careful way, shared by pipes and socket servers: never take over a path a
    /// live server holds, never delete what is not a socket, replace a stale socket file (its server is gone;
    /// in a sticky directory only its owner can remove it).
    /// </summary>
    internal static class UnixSocketFiles
    {
        /// <param name="failure">Builds the caller's error (its kind and wording) for a failure.</param>
        public static Socket BindExclusive(string path, Func<UnixBindFailure, Exception?, IpcException> failure)
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                try
                {
                    socket.Bind(new UnixEndPoint(path));
                    return socket;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
                {
                    if (IsServed(path)) throw failure(UnixBindFailure.Served, e);
                }
                if (!UnixNative.IsSocketFile(path)) throw failure(UnixBindFailure.NotASocket, null);
                try
                {
                    File.Delete(path);
                    socket.Bind(new UnixEndPoint(path));
                    return socket;
                }
                catch (Exception e) when (e is UnauthorizedAccessException || e is IOException || e is SocketException)
                {
                    throw failure(UnixBindFailure.CannotReplace, e);
                }
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        /// <summary>True when something accepts connections on the path (or refuses us for another reason).</summary>
        public static bool IsServed(string path)
        {
            using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                try
                {
                    probe.Connect(new UnixEndPoint(path));
                    return true;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused || e.SocketErrorCode == SocketError.AddressNotAvailable)
                {
                    return false;
                }
                catch (SocketException)
                {
                    return true; // e.g. permission denied: somebody else's, and not ours to replace
                }
            }
        }

        public static void TryDelete(string path)
        {
            try { File.Delete(path); } catch (Exception e) when (e is UnauthorizedAccessException || e is IOException) { }
        }
    }
}
