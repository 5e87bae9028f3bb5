using System;
using System.Collections.Generic;
using System.Management.Automation;
using PsIpc.Transport.Channels;

namespace PsIpc.Handlers
{
    /// <summary>
    /// The Handler, HandlerErrors and RecentHandlerErrors properties of every channel (PsIpc.Types.ps1xml):
    /// a server's script-block handler lives in the module, not in the channel, and is found by the channel.
    /// </summary>
    public static class HandlerMembers
    {
        /// <summary>The request handler of a server (-ScriptBlock); null for every other channel.</summary>
        public static RequestHandler? GetHandler(PSObject instance) =>
            instance?.BaseObject is IpcChannel channel ? RequestHandler.Of(channel) : null;

        /// <summary>Messages the handler failed on; 0 without a handler.</summary>
        public static long GetHandlerErrors(PSObject instance) => GetHandler(instance)?.Errors ?? 0;

        /// <summary>The handler's last few failures, oldest first.</summary>
        public static IReadOnlyList<Exception> GetRecentHandlerErrors(PSObject instance) =>
            GetHandler(instance)?.RecentErrors ?? Array.Empty<Exception>();
    }
}
