using System;
using System.IO;
using System.IO.Pipes;
using System.Threading;

namespace PsIpc.Transport.Pipes
{
    // Windows only. Not testable on the Linux machines this project is built on: keep it small and
    // review every change by reading. Security: CurrentUserOnly restricts the pipe's ACL to the current user
    // (server) and checks the server's owner (client); FirstPipeInstance makes creation fail when another
    // process already serves the name, so PsIpc never joins someone else's pipe.
    internal static class WindowsPipeOptions
    {
        // Values of PipeOptions members missing from netstandard2.0; present on .NET Core 2.1+ / .NET 5+.
        private const PipeOptions CurrentUserOnly = (PipeOptions)0x20000000;
        private const PipeOptions FirstPipeInstance = (PipeOptions)0x00080000;

        // .NET Framework (Windows PowerShell 5.1) rejects these values: there the pipe keeps Windows' default
        // ACL (owner, SYSTEM and administrators full control; Everyone read) — documented in docs/architecture.md.
        private static readonly bool s_isNetFramework =
            System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.Ordinal);

        public static PipeOptions Server(bool first) =>
            PipeOptions.Asynchronous | (s_isNetFramework ? 0 : CurrentUserOnly | (first ? FirstPipeInstance : 0));

        public static PipeOptions Client =>
            PipeOptions.Asynchronous | (s_isNetFramework ? 0 : CurrentUserOnly);
    }

    internal sealed class WindowsPipeListener : IPipeListener
    {
        private readonly PipeName _name;
        private readonly CancellationTokenSource _disposed = new CancellationTokenSource();
        private NamedPipeServerStream _next;

        public WindowsPipeListener(PipeName name)
        {
            _name = name;
            try
            {
                _next = Create(first: true);
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                throw new IpcException(IpcErrorKind.PipeNameInUse,
                    $"The pipe name '{name.Name}' is already served by another process.", name.Name, e);
            }
        }

        public PipeStreamPair Accept()
        {
            NamedPipeServerStream current = _next;
            try
            {
                current.WaitForConnectionAsync(_disposed.Token).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                throw new ObjectDisposedException(nameof(WindowsPipeListener));
            }
            _next = Create(first: false);
            return new PipeStreamPair(current, null);
        }

        public void Dispose()
        {
            _disposed.Cancel();
            _next?.Dispose();
        }

        private NamedPipeServerStream Create(bool first) =>
            new NamedPipeServerStream(_name.Name, PipeDirection.InOut, NamedPipeServerStream.MaxAllowedServerInstances,
                PipeTransmissionMode.Byte, WindowsPipeOptions.Server(first), 65536, 65536);
    }

    internal static class WindowsPipeConnector
    {
        public static PipeStreamPair Connect(PipeName name, Deadline deadline, CancellationToken cancellationToken)
        {
            var client = new NamedPipeClientStream(".", name.Name, PipeDirection.InOut, WindowsPipeOptions.Client);
            try
            {
                client.ConnectAsync(deadline.RemainingMilliseconds, cancellationToken).GetAwaiter().GetResult();
                return new PipeStreamPair(client, null);
            }
            catch (TimeoutException e)
            {
                client.Dispose();
                throw new IpcException(IpcErrorKind.ConnectTimeout, $"Timed out connecting to the pipe '{name.Name}'.", name.Name, e);
            }
            catch (UnauthorizedAccessException e)
            {
                client.Dispose();
                throw new IpcException(IpcErrorKind.AccessDenied,
                    $"The pipe '{name.Name}' belongs to another user; PsIpc does not attach to it.", name.Name, e);
            }
            catch
            {
                client.Dispose();
                throw;
            }
        }
    }
}
