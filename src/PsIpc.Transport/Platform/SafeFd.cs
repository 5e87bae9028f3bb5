using System;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace PsIpc.Transport.Platform
{
    /// <summary>
    /// A Unix file descriptor that closes itself: what <see cref="Libc.Open"/> returns, so that no path through the
    /// code has to remember to close it. -1 is invalid (open failed; errno tells why); 0 is a valid descriptor.
    /// </summary>
    internal sealed class SafeFd : SafeHandle
    {
        /// <summary>Owns <paramref name="fd"/>, what open(2) returned (-1: nothing to own).</summary>
        public SafeFd(int fd) : this(fd, ownsHandle: true)
        {
        }

        private SafeFd(int fd, bool ownsHandle) : base(new IntPtr(-1), ownsHandle) => SetHandle(new IntPtr(fd));

        /// <summary>AT_FDCWD: "relative to the current directory" for the *at() calls. Owns nothing.</summary>
        public static SafeFd CurrentDirectory { get; } = new SafeFd(Libc.Statx.AtFdCwd, ownsHandle: false);

        public override bool IsInvalid => handle == new IntPtr(-1);

        protected override bool ReleaseHandle() => Libc.Close(handle.ToInt32()) == 0;

        /// <summary>
        /// Hands the descriptor to a SafeFileHandle (what FileStream and MemoryMappedFile take); this one is then empty.
        /// </summary>
        public SafeFileHandle ToFileHandle()
        {
            var file = new SafeFileHandle(handle, ownsHandle: true);
            SetHandleAsInvalid();
            return file;
        }
    }
}
