using System;
using System.Management.Automation;
using System.Runtime.InteropServices;
using System.Security;
using System.Text;

namespace PsIpc.Sockets
{
    /// <summary>
    /// Lets -Secret take a SecureString or a credential (its password), the PowerShell way. Plain strings are
    /// refused: a secret typed as text ends up in the history and the transcript.
    /// </summary>
    [AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
    public sealed class SecretTransformationAttribute : ArgumentTransformationAttribute
    {
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            object value = inputData is PSObject wrapped ? wrapped.BaseObject : inputData;
            switch (value)
            {
                case null:
                    return null;
                case SecureString secure:
                    return secure;
                case PSCredential credential:
                    return credential.Password;
                case string _:
                    throw new ArgumentTransformationMetadataException(
                        "-Secret takes a SecureString or a credential, not plain text: for example (Read-Host -AsSecureString), " +
                        "(Get-Credential), or ConvertTo-SecureString read from a protected file.");
                default:
                    throw new ArgumentTransformationMetadataException(
                        $"-Secret takes a SecureString or a PSCredential, not a {value.GetType().Name}.");
            }
        }
    }

    internal static class SecretArgument
    {
        /// <summary>The secret's UTF-8 bytes, the HMAC key of docs/protocol.md 11; the unmanaged copy is zeroed.</summary>
        /// <exception cref="ArgumentException">The secret is empty.</exception>
        public static byte[] ToKey(SecureString secret)
        {
            if (secret == null) return null;
            if (secret.Length == 0) throw new ArgumentException("The shared secret (-Secret) is empty.", nameof(secret));
            IntPtr unmanaged = Marshal.SecureStringToGlobalAllocUnicode(secret);
            try
            {
                return Encoding.UTF8.GetBytes(Marshal.PtrToStringUni(unmanaged, secret.Length));
            }
            finally
            {
                Marshal.ZeroFreeGlobalAllocUnicode(unmanaged);
            }
        }
    }
}
