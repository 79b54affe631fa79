// Types for qrcode-terminal 0.12 (it ships none): the one call keygen uses.
declare module 'qrcode-terminal' {
  interface QrcodeTerminal {
    generate(text: string, options: { small?: boolean }, callback: (qr: string) => void): void;
  }
  const qrcode: QrcodeTerminal;
  export default qrcode;
}
