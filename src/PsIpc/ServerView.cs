using System.Management.Automation;

namespace PsIpc
{
    /// <summary>
    /// The socket-server table (PsIpc.Format.ps1xml) is chosen by this type name, which Start- and
    /// Get-IpcSocketServer add to what they output: the format file names no concrete channel types, and
    /// Get-IpcChannel shows servers in the one channel table like every other channel.
    /// </summary>
    internal static class ServerView
    {
        public const string TypeName = "PsIpc.SocketServer";

        public static object Of(object server)
        {
            PSObject view = PSObject.AsPSObject(server);
            if (!view.TypeNames.Contains(TypeName)) view.TypeNames.Insert(0, TypeName);
            return view;
        }
    }
}
